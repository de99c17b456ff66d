"""The one tag parser (envs.tags): reasoning, answers, boxes, prefilled variants, hostile text."""

import time

import pytest

from envs.tags import (
    answer_span,
    final_answer,
    has_reasoning,
    is_strict_format,
    last_boxed,
    reasoning,
    strip_think,
)


@pytest.mark.parametrize(
    "completion, prefilled, expected",
    [
        ("<think> add 2 and 3 </think><answer>5</answer>", False, "add 2 and 3"),
        ("add 2 and 3</think><answer>5</answer>", True, "add 2 and 3"),
        ("add 2 and 3</think><answer>5</answer>", False, None),  # no opened think
        ("<think>never closed", False, None),
        ("<think>a</think><think>b</think>", False, "a"),  # the first block
    ],
)
def test_reasoning_reads_the_first_closed_think_block(completion, prefilled, expected):
    assert reasoning(completion, prefilled) == expected


def test_an_empty_think_block_is_no_reasoning():
    assert not has_reasoning("<think>  </think><answer>1</answer>")
    assert has_reasoning("r</think><answer>1</answer>", prefilled=True)


@pytest.mark.parametrize(
    "completion, prefilled, expected",
    [
        ("<think>4</think><answer>5</answer>", False, "5"),
        ("<answer>1</answer> then <answer>2</answer>", False, "2"),
        ("<answer>2", False, None),  # the last answer is never closed
        ("no tags 7", False, "no tags 7"),
        ("reasoning 3</think> 7", True, "7"),  # prefilled: reasoning dropped
        ("<think>3 <answer>4</answer>", False, ""),  # an unclosed think swallows the rest
    ],
)
def test_answer_span_drops_reasoning_and_takes_the_last_answer(completion, prefilled, expected):
    got = answer_span(completion, prefilled)
    assert (None if got is None else got.strip()) == expected


def test_strip_think_with_prefilled_treats_the_start_as_inside_think():
    assert strip_think("r</think>x", prefilled=True).strip() == "x"
    assert strip_think("r</think>x").split() == ["r", "x"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\\boxed{1} then \\boxed{\\frac{5}{6}}", "\\frac{5}{6}"),
        ("\\fbox{42} and \\boxed{7}", "7"),
        ("\\boxed{7} and \\fbox{42}", "42"),
        ("\\boxed {7}", "7"),
        ("\\boxed{3} no \\boxed{4", "3"),  # an unbalanced last box falls back to an earlier one
        ("\\boxed{unbalanced", None),
        ("nothing", None),
    ],
)
def test_last_boxed_is_brace_matched_and_last_by_position(text, expected):
    assert last_boxed(text) == expected


def test_final_answer_counts_an_answer_cut_at_its_stop_string():
    assert final_answer("r</think><answer> 7*3") == " 7*3"
    assert final_answer("<think>x</think><answer>1</answer><answer>2</answer>") == "2"


def test_the_parser_is_linear_on_hostile_text():
    hostile = "<think>" * 50_000 + "\\boxed{" * 50_000 + "<answer>" * 50_000
    t0 = time.perf_counter()
    for fn in (reasoning, answer_span, final_answer, is_strict_format, last_boxed):
        fn(hostile)
    assert time.perf_counter() - t0 < 2.0
