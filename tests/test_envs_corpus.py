import re
from dataclasses import replace

import pytest

from envs.base import Task, build_env
from experiments.demo.corpus import (
    CorpusConfig,
    build_corpus,
    carry_dropped,
    eval_prompts,
    make_doc,
    mix_summary,
    needs_carry,
    trace_lines,
)
from rewards.format import is_strict_format
from rewards.math import math_reward

SMALL = CorpusConfig(n_docs=3000, n_train=200, n_eval=100)
LINE = re.compile(r"^(\d)\+(\d)\+([01])=(\d\d) (\d+)$")


def test_same_config_gives_the_same_corpus_and_another_seed_a_different_one():
    a, b = build_corpus(replace(SMALL, n_docs=300)), build_corpus(replace(SMALL, n_docs=300))
    assert [d.text for d in a] == [d.text for d in b]
    c = build_corpus(replace(SMALL, n_docs=300, seed=SMALL.seed + 1))
    assert [d.text for d in a] != [d.text for d in c]


def test_documents_are_the_tiny_prompt_plus_completion_plus_eos():
    for d in build_corpus(replace(SMALL, n_docs=50)):
        assert d.text == f"Q: {d.a}+{d.b}=\nA: " + d.completion + "<eos>"
        assert 100 <= d.a <= 999 and 100 <= d.b <= 999  # fixed 3-digit default


def test_kind_and_variant_fractions_match_the_config_within_tolerance():
    mix = mix_summary(build_corpus(SMALL))
    assert mix["direct"] == pytest.approx(SMALL.direct_fraction, abs=0.03)
    assert mix["think"] == pytest.approx(SMALL.think_fraction, abs=0.03)
    assert mix["bad"] == pytest.approx(SMALL.bad_fraction, abs=0.03)
    think = SMALL.think_fraction
    assert mix["think/sloppy"] == pytest.approx(think * SMALL.sloppy_fraction, abs=0.01)
    assert mix["think/truncated"] == pytest.approx(think * SMALL.truncated_fraction, abs=0.01)


def test_trace_of_175_plus_48_is_the_hand_worked_column_addition():
    lines, result = trace_lines(175, 48)
    assert lines == ["5+8+0=13 3", "7+4+1=12 23", "1+0+1=02 223"]
    assert result == 223


def test_final_carry_gets_its_own_line():
    assert trace_lines(95, 17) == (["5+7+0=12 2", "9+1+1=11 12", "0+0+1=01 112"], 112)


def test_sloppy_step_adds_one_to_that_column_and_propagates():
    assert trace_lines(175, 48, error_column=1) == (
        ["5+8+0=13 3", "7+4+1=13 33", "1+0+1=02 233"],
        233,
    )


def test_carry_dropped_sums_columns_mod_ten():
    assert carry_dropped(175, 48) == 113
    assert carry_dropped(95, 17) == 2  # 5+7 → 2, 9+1 → 0, final carry dropped
    assert needs_carry(175, 48) and not needs_carry(123, 456)


def test_every_clean_trace_line_is_arithmetically_right_and_sloppy_ones_are_wrong():
    docs = [d for d in build_corpus(SMALL) if d.kind == "think" and d.variant != "truncated"]
    assert {d.variant for d in docs} == {"clean", "sloppy"}
    for d in docs:
        body = d.completion[len("<think>") : d.completion.index("</think>")]
        rows = [LINE.match(line) for line in body.strip().split("\n")]
        assert all(rows), d.completion
        answer = int(d.completion.split("<answer>")[1].split("</answer>")[0])
        right = all(
            int(x) + int(y) + int(c) == int(s) for x, y, c, s, _ in (r.groups() for r in rows)
        )
        assert right == (d.variant == "clean")
        assert (answer == d.a + d.b) == (d.variant == "clean") == d.correct
        assert int(rows[-1].group(5)) == answer


def test_truncated_traces_have_no_answer_and_no_closing_tag():
    docs = [d for d in build_corpus(SMALL) if d.variant == "truncated"]
    assert docs
    for d in docs:
        assert d.completion.startswith("<think>") and "</think>" not in d.completion
        assert "<answer>" not in d.completion and not d.correct


def test_no_eval_prompt_appears_in_the_corpus_even_in_a_tiny_task_space():
    cfg = CorpusConfig(n_docs=600, digits=1, min_digits=1, n_train=10, n_eval=40)
    held_out = {t.prompt for t in build_env("arithmetic", **cfg.env_kwargs()).eval}
    assert held_out == eval_prompts(cfg) and len(held_out) == 40
    seen = {f"{d.a}+{d.b}=" for d in build_corpus(cfg)}
    assert not seen & held_out
    assert len(seen) == 100 - 40  # every other one of the 10x10 problems occurs


def test_direct_answers_are_right_exactly_on_the_no_carry_problems():
    cfg = replace(SMALL, direct_right_on_carry=0.0)
    docs = [d for d in build_corpus(cfg) if d.kind == "direct"]
    assert all(d.correct == (not needs_carry(d.a, d.b)) for d in docs)
    assert all(
        d.completion == f"<answer>{carry_dropped(d.a, d.b)}</answer>"
        for d in docs
        if needs_carry(d.a, d.b)
    )


def test_correct_flags_agree_with_the_math_reward_and_formats_with_the_format_check():
    docs = [d for d in build_corpus(replace(SMALL, n_docs=800)) if d.kind != "bad"]
    tasks = [Task(prompt=f"{d.a}+{d.b}=", answer=str(d.a + d.b)) for d in docs]
    assert list(math_reward([d.completion for d in docs], tasks)) == [
        float(d.correct) for d in docs
    ]
    for d in docs:
        assert is_strict_format(d.completion) == (d.variant in ("clean", "sloppy"))


def test_badly_formatted_documents_never_pass_the_strict_format_check():
    docs = [d for d in build_corpus(SMALL) if d.kind == "bad"]
    assert {d.variant for d in docs} == {"bare", "prose", "unclosed", "chatter", "untagged_trace"}
    assert not any(is_strict_format(d.completion) for d in docs)


def test_bad_fractions_and_unknown_kinds_are_rejected_with_their_names():
    with pytest.raises(ValueError, match="direct_fraction"):
        CorpusConfig(direct_fraction=0.8, think_fraction=0.3)
    with pytest.raises(ValueError, match="sloppy_fraction"):
        CorpusConfig(sloppy_fraction=1.5)
    import random

    with pytest.raises(ValueError, match="unknown document kind 'essay'"):
        make_doc(1, 2, "essay", random.Random(0), SMALL)
