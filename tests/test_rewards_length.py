import math

import pytest

from envs.base import Task
from rewards.base import Scores
from rewards.length import (
    cosine_length_reward,
    make_cosine_length_reward,
    overlong_penalty,
    overlong_reward,
)


@pytest.mark.parametrize(
    "length, expected",
    [
        (0, 0.0),
        (80, 0.0),
        (85, -0.25),
        (90, -0.5),
        (100, -1.0),
        (101, -1.0),
        (10_000, -1.0),
    ],
)
def test_overlong_penalty_is_zero_then_linear_then_minus_one(length, expected):
    assert overlong_penalty(length, max_len=100, cache_len=20) == pytest.approx(expected)


def test_overlong_penalty_with_cache_equal_to_max_starts_at_zero_length():
    assert overlong_penalty(0, 10, 10) == 0.0
    assert overlong_penalty(5, 10, 10) == pytest.approx(-0.5)


@pytest.mark.parametrize(
    "args, message",
    [
        ((5, 100, 0), "0 < cache_len <= max_len"),
        ((5, 100, 101), "0 < cache_len <= max_len"),
        ((-1, 100, 20), "length must be >= 0"),
    ],
)
def test_overlong_penalty_rejects_bad_settings(args, message):
    with pytest.raises(ValueError, match=message):
        overlong_penalty(*args)


@pytest.mark.parametrize(
    "correct, length, expected",
    [
        (True, 0, 2.0),  # r0_correct
        (True, 50, 1.5),  # halfway: mean of r0 and rL
        (True, 25, 1.0 + 0.5 * (1 + math.cos(math.pi / 4))),
        (False, 0, -10.0),  # r0_wrong
        (False, 50, -5.0),
        (True, 100, -10.0),  # used the whole budget: r_exceed
        (False, 150, -10.0),
    ],
)
def test_cosine_reward_matches_hand_computed_values(correct, length, expected):
    assert cosine_length_reward(correct, length, 100) == pytest.approx(expected)


def test_cosine_reward_prefers_short_correct_and_long_wrong_answers():
    correct = [cosine_length_reward(True, n, 100) for n in range(0, 100, 10)]
    wrong = [cosine_length_reward(False, n, 100) for n in range(0, 100, 10)]
    assert correct == sorted(correct, reverse=True) and correct[-1] > 1.0
    assert wrong == sorted(wrong) and wrong[-1] < 0.0
    assert min(correct) > max(wrong)


def test_cosine_reward_endpoints_are_configurable():
    kw = dict(r0_correct=1.0, rL_correct=0.5, r0_wrong=-1.0, rL_wrong=-0.5, r_exceed=-2.0)
    assert cosine_length_reward(True, 0, 10, **kw) == 1.0
    assert cosine_length_reward(False, 5, 10, **kw) == pytest.approx(-0.75)
    assert cosine_length_reward(False, 10, 10, **kw) == -2.0


def test_overlong_reward_measures_chars_by_default_and_words_or_callables_on_request():
    completions = ["x" * 90, "one two three four five six seven eight nine ten"]
    tasks = [Task("p")] * 2
    assert overlong_reward(completions, tasks, max_len=100, cache_len=20) == pytest.approx(
        [-0.5, 0.0]
    )
    assert overlong_reward(
        completions, tasks, max_len=10, cache_len=4, length_fn="words"
    ) == pytest.approx([0.0, -1.0])  # "xxx…" is one word; ten words reach max_len
    assert overlong_reward(
        completions, tasks, max_len=10, cache_len=5, length_fn=lambda s: 8
    ) == pytest.approx([-0.6, -0.6])


def test_unknown_length_fn_is_an_error_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"known: \['chars', 'words'\]"):
        overlong_reward(["x"], [Task("p")], max_len=10, cache_len=5, length_fn="tokens")


def test_cosine_factory_uses_the_correctness_reward_and_passes_on_its_counts():
    def judge(completions, tasks):
        return Scores([1.0 if "right" in c else 0.0 for c in completions], errors=1, timeouts=2)

    reward = make_cosine_length_reward(max_len=100, correctness=judge)
    out = reward(["right" + " " * 45, "wrong" + " " * 45, "right" * 20], [Task("p")] * 3)
    assert out == pytest.approx([1.5, -5.0, -10.0])
    assert out.errors == 1 and out.timeouts == 2


def test_cosine_factory_resolves_correctness_by_registry_name():
    reward = make_cosine_length_reward(max_len=100, correctness="format")
    good = "<think>r</think><answer>5</answer>"  # 34 chars, strict format -> "correct"
    expected = 1.0 + 0.5 * (1 + math.cos(math.pi * 34 / 100))
    assert reward([good, "bad"], [Task("p")] * 2) == pytest.approx(
        [expected, cosine_length_reward(False, 3, 100)]
    )


def test_cosine_factory_passes_options_to_the_correctness_reward():
    reward = make_cosine_length_reward(
        max_len=1000, correctness="format", correctness_options={"prefilled": True}
    )
    assert reward(["r</think><answer>5</answer>"], [Task("p")]) == pytest.approx(
        [cosine_length_reward(True, 27, 1000)]
    )
    with pytest.raises(ValueError, match="need a registry name"):
        make_cosine_length_reward(
            max_len=10,
            correctness=lambda c, t: [1.0] * len(c),
            correctness_options={"prefilled": True},
        )


def test_cosine_factory_threshold_decides_what_counts_as_correct():
    def partial_credit(completions, tasks):
        return [0.5] * len(completions)

    strict = make_cosine_length_reward(max_len=10, correctness=partial_credit)
    lenient = make_cosine_length_reward(
        max_len=10, correctness=partial_credit, correct_threshold=0.5
    )
    assert strict([""], [Task("p")]) == [-10.0]
    assert lenient([""], [Task("p")]) == [2.0]


def test_cosine_factory_fails_fast_on_bad_settings():
    with pytest.raises(ValueError, match="max_len must be > 0"):
        make_cosine_length_reward(max_len=0, correctness="format")
    with pytest.raises(TypeError):
        make_cosine_length_reward(max_len=10, correctness="format", r_bogus=1.0)
