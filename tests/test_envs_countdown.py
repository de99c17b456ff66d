"""Countdown: the safe verifier, solvable generation, and the reward's answer extraction."""

import itertools
from fractions import Fraction

import pytest

from envs.base import build_env
from envs.countdown import check, countdown_reward, make_task
from envs.tags import final_answer

NUMS = [3, 7, 25, 50]


@pytest.mark.parametrize(
    "expr, target",
    [
        ("50 - 25 - 7 - 3", 15),
        ("(50 + 25) / 3", 25),
        ("7 * 3 + 50", 71),
        ("50/25*7", 14),
        ("(3 + 7) * (50 - 25)", 250),
        ("25 × 3 − 7", 68),  # Unicode signs
        ("50 ÷ 25", 2),
        ("7 * 3 = 21", 21),  # a trailing "= target" is allowed
        ("((((7))))", 7),
        ("\n 3 + 7 \n", 10),  # answer tags often hold newlines
    ],
)
def test_valid_expressions_are_accepted(expr, target):
    assert check(expr, NUMS, target)


@pytest.mark.parametrize(
    "expr, target, why",
    [
        ("7 + 7", 14, "reuses 7"),
        ("3 * 4", 12, "4 is not given"),
        ("50 + 25", 76, "wrong target"),
        ("50 / (7 - 7)", 0, "division by zero (and reuse)"),
        ("50 / (25 - 25)", 0, "division by zero"),
        ("3 / (7 - 7)", 1, "division by zero"),
        ("-3 + 7", 4, "unary minus is not an allowed operation"),
        ("50 ** 3", 125000, "power is not allowed"),
        ("7 ** 50 ** 25", 0, "huge exponent"),
        ("__import__('os').system('echo hi')", 0, "injection"),
        ("().__class__.__bases__[0]", 0, "attribute walk"),
        ("open('/etc/passwd')", 0, "call"),
        ("lambda: 3", 3, "lambda"),
        ("3.0 + 7", 10, "float literal"),
        ("True + 7", 8, "bool literal"),
        ("50 // 25", 2, "floor division"),
        ("50 % 7", 1, "modulo"),
        ("7 * 3 = 22", 21, "trailing equation with another number"),
        ("", 0, "empty"),
        ("3 +", 3, "syntax error"),
        ("(" * 300 + "3" + ")" * 300, 3, "too long / too deep"),
        ("9" * 5000, 3, "huge literal"),
        ("0x19 + 3", 28, "hex spelling of 25"),
        ("2_5 + 3", 28, "underscore spelling of 25"),
    ],
)
def test_invalid_expressions_are_rejected(expr, target, why):
    assert not check(expr, NUMS, target), why


def test_exact_rational_arithmetic_is_used_not_floats():
    assert check("3 / 7 * 7", [3, 7, 7], 3)  # 3/7*7 is exactly 3
    assert check("(7 - 3 / 25) * 50", [3, 7, 25, 50], 344)
    assert not check("7 / 3", [3, 7], 2)  # 2.333... is not 2


def test_use_all_requires_every_number_exactly_once():
    assert check("50 - 25", NUMS, 25, use_all=False)
    assert not check("50 - 25", NUMS, 25, use_all=True)
    assert check("50 - 25 + 7 - 7", [50, 25, 7, 7], 25, use_all=True)
    assert check("(50 - 25) * 3 + 7", NUMS, 82, use_all=True)


def test_repeated_given_numbers_may_each_be_used_once():
    assert check("7 + 7", [7, 7, 1], 14)
    assert not check("7 + 7 + 7", [7, 7, 1], 21)


def _reachable(numbers):
    """Independent brute force: every value of any + - * / expression over a subset of numbers."""

    def combos(items):
        if len(items) == 1:
            yield items[0]
        for i, j in itertools.permutations(range(len(items)), 2):
            rest = [x for k, x in enumerate(items) if k not in (i, j)]
            a, b = items[i], items[j]
            for v in (a + b, a - b, a * b) + ((a / b,) if b else ()):
                yield from combos(rest + [v])

    values = set()
    for r in range(1, len(numbers) + 1):
        for subset in itertools.combinations(numbers, r):
            values.update(combos([Fraction(n) for n in subset]))
    return values


def test_generated_instances_are_solvable_per_an_independent_brute_force():
    env = build_env("countdown", n_numbers=3, n_train=30, n_eval=10, seed=3)
    for task in env.train + env.eval:
        assert Fraction(int(task.answer)) in _reachable(task.meta["numbers"]), task.meta


def test_every_generated_witness_passes_the_verifier_with_all_numbers():
    env = build_env("countdown", n_numbers=5, use_all=True, n_train=300, n_eval=30, seed=1)
    for task in env.train + env.eval:
        meta = task.meta
        assert meta["target"] == int(task.answer) and 1 <= meta["target"] <= 999
        assert len(meta["numbers"]) == 5 == meta["difficulty"] and meta["use_all"] is True
        assert check(meta["solution"], meta["numbers"], meta["target"], use_all=True)


def test_prompts_are_ascii_and_state_the_numbers_and_target():
    task = make_task([3, 7, 25], 46, use_all=False)
    assert task.prompt.isascii()
    assert "[3, 7, 25]" in task.prompt and "equals 46" in task.prompt


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>try 3+7</think> <answer>50 - 25</answer>", "50 - 25"),
        ("<think>x</think><answer>1</answer> more <answer>2</answer>", "2"),
        ("<think><answer>50-25</answer> hmm", None),  # unclosed think
        ("<think><answer>50-25</answer></think> nothing", None),  # answer inside think
        ("reasoning...</think> <answer>7*3", "7*3"),  # prefilled, stop cut off
        ("no tags at all", None),
    ],
)
def test_final_answer_ignores_the_reasoning(completion, expected):
    assert final_answer(completion) == expected


def test_countdown_reward_scores_each_completion_against_its_task():
    a = make_task([3, 7, 25, 50], 15, use_all=False)
    b = make_task([3, 7, 25, 50], 82, use_all=True)
    completions = [
        "<think>50-25=25, 25-10=15</think><answer>50 - 25 - 7 - 3</answer>",
        "<think>…</think><answer>(50 - 25) * 3 + 7</answer>",
        "<think>(50 - 25) * 3 + 7</think><answer>50 + 25</answer>",  # think text never counts
        "<think>…</think><answer>50 - 25 - 7 - 3</answer>",  # right for a, not for b
        "<think>…</think><answer>__import__('os')</answer>",
    ]
    assert countdown_reward(completions, [a, b, b, b, a]) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_countdown_reward_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 completions for 1 tasks"):
        countdown_reward(["", ""], [make_task([1, 2], 3, False)])
