"""The reward audit (rewards.audit, rlreason-audit-rewards): coverage, verdict and exit logic,
JSON output, and the math-verify agreement plumbing (with a stand-in math_verify)."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from experiments.audit import main
from rewards.audit import format_table, run_audit
from rewards.audit_suite import AUDITS, CLASSES, FAMILIES, RewardAudit
from rewards.grader_agreement import PAIRS, compare
from rewards.registry import REWARDS, reward_names


def accept_all(completions, tasks):
    return [1.0] * len(completions)


def reject_all(completions, tasks):
    return [0.0] * len(completions)


def test_every_registered_reward_has_audit_cases():
    missing = sorted(set(reward_names()) - set(AUDITS))
    assert not missing, f"add {missing} to rewards.audit_suite.AUDITS"


def test_every_family_has_a_control_and_every_required_class_has_probes():
    for name, audit in AUDITS.items():
        attacks = {p.attack for p in FAMILIES[audit.family]()}
        assert "control" in attacks, name
        assert attacks <= set(CLASSES), name
        assert audit.must_reject <= attacks, (name, audit.must_reject - attacks)


def test_a_reward_without_cases_is_reported_as_no_cases_and_fails(monkeypatch):
    monkeypatch.setitem(REWARDS, "unaudited", accept_all)
    report = run_audit(["unaudited"])
    assert report.exit_code == 1
    assert report.failures == ["unaudited: no cases (add it to rewards.audit_suite.AUDITS)"]
    assert "unaudited: no cases" in format_table(report)


def test_a_reward_that_accepts_everything_fails_and_is_named(monkeypatch, capsys):
    monkeypatch.setitem(REWARDS, "math", accept_all)
    assert main(["--rewards", "math", "--no-agreement"]) == 1
    out = capsys.readouterr().out
    assert "FAIL math accepts known-bad hedge" in out
    assert "FAIL math accepts known-bad several_answers" in out


def test_a_newly_registered_accept_all_reward_fails_once_it_has_cases(monkeypatch, capsys):
    monkeypatch.setitem(REWARDS, "yes_man", accept_all)
    monkeypatch.setitem(AUDITS, "yes_man", RewardAudit("math", frozenset({"hedge"})))
    assert main(["--rewards", "yes_man,format", "--no-agreement"]) == 1
    out = capsys.readouterr().out
    assert "FAIL yes_man accepts known-bad hedge (5/5)" in out
    assert "FAIL format" not in out


def test_a_reward_that_rejects_its_control_fails(monkeypatch):
    monkeypatch.setitem(REWARDS, "format", reject_all)
    report = run_audit(["format"])
    assert report.exit_code == 1
    assert report.failures[0].startswith("format rejects its control (2/2)")


def test_a_reward_that_cannot_be_built_fails_with_the_reason(monkeypatch):
    monkeypatch.setitem(AUDITS, "overlong", RewardAudit("math", frozenset(), {"bogus": 1}))
    report = run_audit(["overlong"])
    assert report.exit_code == 1 and "could not be scored" in report.failures[0]


def test_unknown_reward_names_are_a_usage_error(capsys):
    assert main(["--rewards", "nope", "--no-agreement"]) == 2
    assert "unknown reward(s) ['nope']" in capsys.readouterr().err


def test_the_json_output_holds_every_cell_and_the_exit_code(tmp_path, capsys):
    path = tmp_path / "audit.json"
    code = main(["--rewards", "format,tag_count", "--json", str(path), "--no-agreement"])
    data = json.loads(path.read_text())
    assert set(data["rewards"]) == {"format", "tag_count"} and data["exit_code"] == code == 0
    cell = data["rewards"]["format"]["cells"]["empty_think"]
    assert cell == {
        "accepted": 0,
        "total": 1,
        "required": "reject",
        "ok": True,
        "accepted_examples": [],
    }
    assert data["rewards"]["format"]["cells"]["control"]["required"] == "accept"
    assert data["agreement"] == {"skipped": "--no-agreement"}
    assert "empty_think" in capsys.readouterr().out


def test_the_table_has_a_row_per_class_and_a_column_per_reward():
    table = format_table(run_audit(["format", "language"]))
    head = table.splitlines()[0].split()
    assert head[-2:] == ["format", "language"]
    assert any(line.startswith("control") and line.count("ok") == 2 for line in table.splitlines())
    assert any(line.startswith("wrong_language") for line in table.splitlines())


@pytest.mark.timeout(120)
def test_the_full_suite_passes_on_todays_rewards(capsys):
    assert main(["--no-agreement"]) == 0, capsys.readouterr().out


def test_agreement_is_skipped_with_a_reason_without_math_verify(capsys):
    if importlib.util.find_spec("math_verify") is not None:
        pytest.skip("math_verify is importable here")
    agreement = compare(None)
    assert agreement.skipped and "--math-verify-python" in agreement.skipped
    assert main(["--rewards", "format", "--math-verify-python", sys.executable]) == 0
    assert "grader agreement: skipped" in capsys.readouterr().out


FAKE_MATH_VERIFY = """
def parse(text):
    return text.replace("<think>Working.</think><answer>\\\\boxed{", "$").replace("}</answer>", "$")

def verify(gold, pred):
    if "10^{10000}" in pred:
        raise TimeoutError("too big")
    return gold == pred
"""


def _fake_interpreter(tmp_path: Path) -> str:
    """A 'python' whose math_verify is a stand-in comparing the boxed text with the gold."""
    package = tmp_path / "site" / "math_verify"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_MATH_VERIFY)
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{tmp_path / "site"}" exec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


@pytest.mark.skipif(os.name != "posix", reason="the stand-in interpreter is a shell script")
def test_agreement_runs_another_interpreter_over_json_lines_and_groups_disagreements(tmp_path):
    agreement = compare(_fake_interpreter(tmp_path))
    assert agreement.skipped is None and len(agreement.rows) == len(PAIRS)
    by_pred = {(r["pred"], r["gold"]): r for r in agreement.rows}
    assert by_pred[("6", "6")]["math_verify"] is True
    assert by_pred[("\\frac{1}{2}", "0.5")]["math_verify"] is False
    assert "too big" in by_pred[("10^{10000}", "10^{10000}")]["error"]
    groups = agreement.disagreements()
    assert "fractions" in groups and all(
        r["rlreason"] != r["math_verify"] for rows in groups.values() for r in rows
    )
    text = agreement.format()
    assert f"{agreement.agreed}/{len(PAIRS)}" in text and "  fractions:" in text
