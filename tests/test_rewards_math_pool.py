"""The public API around the checker: reward, batch API, worker pool, canonical keys, safety."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import threading

import pytest

from envs.base import Task
from rewards.base import Scores
from rewards.math import (
    canonical_answer,
    check_many,
    check_many_verdicts,
    is_equivalent,
    math_reward,
)
from rewards.math import reward as checker

REPO = pathlib.Path(__file__).resolve().parent.parent
SYMBOLIC = [("\\sqrt{12}", "2\\sqrt{3}"), ("(x+1)^2", "x^2+2x+1"), ("\\sin^2 y+\\cos^2 y", "1")]


def test_reward_scores_each_completion_and_counts_errors():
    completions = [
        "<think>2+2</think><answer>4</answer>",
        "<answer>5</answer>",
        "<answer>\\sqrt{8}</answer>",
        "<answer>1</answer>",
        "<answer>x</answer>",
    ]
    tasks = [
        Task("2+2", "4"),
        Task("2+2", "4"),
        Task("s", "2\\sqrt{2}"),
        Task("p", None),
        Task("q", "\\boxed{x}"),
    ]
    scores = math_reward(completions, tasks)
    assert isinstance(scores, Scores)
    assert list(scores) == [1.0, 0.0, 1.0, 0.0, 1.0]
    assert (scores.errors, scores.timeouts) == (1, 0)


def test_reward_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 completions for 1 tasks"):
        math_reward(["a", "b"], [Task("p", "1")])


def test_check_many_agrees_with_is_equivalent_one_by_one():
    pairs = [("1/2", "0.5"), ("x+1", "1+x"), ("3", "4"), ("<answer></answer>", "1")] + SYMBOLIC
    assert check_many(pairs) == [is_equivalent(p, g) for p, g in pairs]
    assert check_many(pairs) == [True, True, False, False, True, True, True]


def test_overrunning_checks_time_out_to_false_count_in_the_reward_and_the_pool_recovers():
    scores = math_reward(
        ["<answer>\\sqrt{27}+0*q</answer>", "<answer>7</answer>"],
        [Task("p", "3\\sqrt{3}"), Task("p", "7")],
        timeout_s=0.0,
    )
    assert list(scores) == [0.0, 1.0] and (scores.timeouts, scores.errors) == (1, 0)
    verdict = check_many_verdicts([("\\sqrt{27}+0*q", "3\\sqrt{3}")])[0]
    assert (verdict.equal, verdict.method) == (True, "symbolic")


def test_a_crashed_worker_is_replaced():
    checker.start_pool()
    check_many([("\\sqrt{2}\\sqrt{2}", "2")])
    for worker in list(checker._POOL.workers):
        worker.proc.kill()
        worker.proc.wait()
    assert check_many([("\\sqrt{3}\\sqrt{3}", "3"), ("\\sqrt{5}", "2")]) == [True, False]


def test_checks_work_from_other_threads_at_the_same_time():
    results = {}

    def run(k):
        pairs = [(f"\\sqrt{{{k * k * 2}}}", f"{k}\\sqrt{{2}}"), (f"{k}", f"{k + 1}")]
        results[k] = check_many(pairs)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {k: [True, False] for k in range(2, 6)}


@pytest.mark.parametrize(
    "variants",
    [
        ["1/2", "0.5", "\\frac{1}{2}", "\\dfrac{2}{4}", "<answer>\\boxed{0.50}</answer>"],
        ["\\{1, 2\\}", "2, 1", "x=1 or x=2"],
        ["-3", "−3", "x = -3", "-\\frac{6}{2}"],
    ],
)
def test_canonical_answer_gives_equal_keys_to_equal_rationals(variants):
    assert len({canonical_answer(v) for v in variants}) == 1


def test_canonical_answer_keeps_different_values_apart_and_falls_back_to_strings():
    assert canonical_answer("1/3") != canonical_answer("0.3333")
    assert canonical_answer("2\\sqrt{3}") == "2\\sqrt{3}"
    assert canonical_answer("<answer></answer>") is None
    assert canonical_answer("(1, 2]") == "(1,2]"


def test_importing_the_checker_loads_neither_torch_nor_sympy():
    code = (
        "import sys, rewards.math as m; m.check_many([('1/2', '0.5'), ('2', '3')]);"
        "print('torch' in sys.modules, 'sympy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_checker_source_never_evaluates_or_sympifies_strings():
    paths = sorted((REPO / "rewards" / "math").glob("*.py"))
    assert len(paths) >= 10  # the package's modules, not an empty glob
    sources = "".join(p.read_text() for p in paths)
    assert not re.search(r"\b(eval|exec|sympify|parse_expr|parse_latex|S)\(", sources)


INJECTIONS = [
    "__import__('os').system('touch /tmp/pwned')",
    "exec('x=1')",
    "Symbol('x')",
    "x.__class__",
    "lambda: 0",
    "\\input{/etc/passwd}",
    "{}.__dict__",
    "x; import os",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_are_never_handed_to_a_string_parser(text, monkeypatch):
    import sympy.parsing.sympy_parser as sp

    from rewards.math.symbolic import check_symbolic

    def forbidden(*args, **kwargs):
        raise AssertionError("string parser called")

    monkeypatch.setattr(sp, "parse_expr", forbidden)
    monkeypatch.setattr(sp, "eval_expr", forbidden)
    try:
        check_symbolic("x", text)
    except ValueError:  # ParseError: refused, as it should be
        pass
    assert check_symbolic("2\\sqrt{2}", "\\sqrt{8}") is True
    assert is_equivalent(text, "0") is False


def test_workers_that_cannot_start_give_errors_instead_of_hanging(monkeypatch):
    pool = checker._Pool(2)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every worker exits at once
    try:
        verdicts = pool.run([("x", "y"), ("a", "b")], timeout_s=1.0)
        assert verdicts == [checker.Verdict(False, "error")] * 2
    finally:
        monkeypatch.undo()
        pool.close()


def test_a_forked_child_starts_its_own_workers_instead_of_sharing_the_parents():
    import os

    check_many([("\\sqrt{2}\\sqrt{2}", "2")])
    parent_pids = {w.proc.pid for w in checker._POOL.workers}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        checker.start_pool()  # starts its own workers without waiting for them
        pids = {w.proc.pid for w in checker._POOL.workers}
        checker.close_pool()
        os.write(write, b"1" if len(pids) == 2 and not pids & parent_pids else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 1) == b"1"
    assert {w.proc.pid for w in checker._POOL.workers} == parent_pids
