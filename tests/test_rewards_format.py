import pytest

from envs.base import Task
from envs.tags import is_soft_format, is_strict_format, split_completion
from rewards.format import (
    soft_format_reward,
    strict_format_reward,
    tag_count_reward,
    tag_count_score,
)

GOOD = "<think>2+3 is 5</think><answer>5</answer>"


@pytest.mark.parametrize(
    "completion",
    [
        GOOD,
        "  \n<think>\nreason\n</think>\n\n<answer> 5 </answer>\n  ",
        "<think>a < b and b > c</think> <answer>x</answer>",
        "<think>多步推理</think><answer>五</answer>",
    ],
)
def test_strict_format_accepts_well_formed_completions(completion):
    assert is_strict_format(completion)


@pytest.mark.parametrize(
    "completion",
    [
        "Sure! <think>r</think><answer>5</answer>",  # text before <think>
        "<think>r</think><answer>5</answer> done",  # text after </answer>
        "<think>r</think><answer>5</answer></answer>",  # </answer> twice
        "<think>   </think><answer>5</answer>",  # empty reasoning
        "<think>r</think><answer> \n </answer>",  # empty answer
        "<think>r</think>so<answer>5</answer>",  # text between the blocks
        "<think>a<think>b</think></think><answer>5</answer>",  # nested think
        "<think>r</think><answer>5 <think>x</think></answer>",  # tags inside the answer
        "<think>r</think><answer>5 <answer>6</answer>",  # answer opened twice
        "<answer>5</answer><think>r</think>",  # wrong order
        "<think>r</think>",  # no answer
        "r</think><answer>5</answer>",  # missing <think>
        "<THINK>r</THINK><ANSWER>5</ANSWER>",  # tags are case-sensitive
        "",
    ],
)
def test_strict_format_rejects_malformed_completions(completion):
    assert not is_strict_format(completion)


def test_prefilled_completion_starts_inside_think():
    completion = " 2+3 is 5</think>\n<answer>5</answer>"
    assert is_strict_format(completion, prefilled=True)
    assert not is_strict_format(completion)
    assert not is_strict_format(GOOD, prefilled=True)  # re-opening <think> is nesting
    assert not is_strict_format("   </think><answer>5</answer>", prefilled=True)


def test_non_string_completion_is_not_strict():
    assert not is_strict_format(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "completion, prefilled, expected",
    [
        (GOOD, False, ("2+3 is 5", "5")),
        ("<think> r </think> noise <answer> 7 </answer> tail", False, ("r", "7")),
        ("just text", False, (None, None)),
        ("<answer>7</answer>", False, (None, "7")),
        ("<think>unclosed <answer>7</answer>", False, (None, "7")),
        ("<think>r</think><answer>unclosed", False, ("r", None)),
        ("r</think><answer>7</answer>", True, ("r", "7")),
        ("<think>r</think><answer>1</answer><answer>2</answer>", False, ("r", "1")),
        ("<think>r</think><answer>x <think>y</answer>", False, ("r", "x <think>y")),
    ],
)
def test_split_completion_extracts_first_blocks(completion, prefilled, expected):
    assert split_completion(completion, prefilled) == expected


def test_answer_before_think_is_not_taken_as_the_answer():
    assert split_completion("<answer>1</answer><think>r</think>") == ("r", None)


@pytest.mark.parametrize(
    "completion, prefilled, expected",
    [
        (GOOD, False, True),
        ("hi <think></think> x <answer></answer> bye", False, True),
        ("<think>a</think><think>b</think><answer>c</answer>", False, True),
        ("<answer>c</answer><think>a</think>", False, False),
        ("<think>a<answer>c</answer></think>", False, False),
        ("r</think><answer>c</answer>", True, True),
        ("r</think><answer>c</answer>", False, False),
    ],
)
def test_soft_format_needs_only_the_order_of_tags(completion, prefilled, expected):
    assert is_soft_format(completion, prefilled) is expected


@pytest.mark.parametrize(
    "completion, prefilled, expected",
    [
        (GOOD, False, 1.0),
        ("<think>r</think><answer>5</answer></answer>", False, 0.75),
        ("<think>r</think>", False, 0.5),
        ("no tags", False, 0.0),
        ("r</think><answer>5</answer>", True, 1.0),
        (GOOD, True, 0.75),
        ("<think><think>r</think></think>", False, 0.0),
    ],
)
def test_tag_count_gives_a_quarter_per_correct_tag_count(completion, prefilled, expected):
    assert tag_count_score(completion, prefilled) == expected


def test_reward_callables_score_each_completion():
    completions = [GOOD, "<think>r</think> x <answer>5</answer> y", "none"]
    tasks = [Task("p")] * 3
    assert strict_format_reward(completions, tasks) == [1.0, 0.0, 0.0]
    assert soft_format_reward(completions, tasks) == [1.0, 1.0, 0.0]
    assert tag_count_reward(completions, tasks) == [1.0, 1.0, 0.0]
    assert strict_format_reward(["r</think><answer>5</answer>"], tasks[:1], prefilled=True) == [1.0]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "hostile, tag_score, split, soft",
    [
        ("<think>" * 150_000, 0.0, (None, None), False),
        (
            "<think>" + "a" * 1_000_000 + "</think><answer>" + "<" * 100_000,
            0.75,
            ("a" * 1_000_000, None),
            False,
        ),
        ("<think>r</think><answer>" + "</answer>" * 100_000, 0.75, ("r", ""), True),
        (" " * 1_000_000 + "x", 0.0, (None, None), False),
        ("<think></think>" * 70_000, 0.0, ("", None), False),
    ],
)
def test_megabyte_hostile_inputs_are_handled_without_backtracking(hostile, tag_score, split, soft):
    # A backtracking regex would hang here; the guard timeout turns that into a failure.
    assert not is_strict_format(hostile)
    assert tag_count_score(hostile) == tag_score
    assert split_completion(hostile) == split
    assert is_soft_format(hostile) is soft


def test_megabyte_well_formed_completion_is_strict():
    big = "<think>" + "step. " * 200_000 + "</think><answer>42</answer>"
    assert is_strict_format(big)
    assert split_completion(big)[1] == "42"
