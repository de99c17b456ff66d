"""Arithmetic: answers against an independent computation, knobs and errors."""

import re

import pytest

from envs.base import build_env

PROMPT = re.compile(r"^(\d+)([+*-])(\d+)=$")


def test_arithmetic_answers_match_an_independent_computation():
    env = build_env("arithmetic", digits=4, n_train=400, n_eval=100, seed=7)
    ops = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}
    for task in env.train + env.eval:
        a, op, b = PROMPT.match(task.prompt).groups()
        assert task.answer == str(ops[op](int(a), int(b)))
        assert task.meta["difficulty"] == max(len(a), len(b)) and task.meta["op"] == op


def test_arithmetic_digits_and_ops_are_respected():
    env = build_env("arithmetic", digits=5, min_digits=5, ops=["-"], n_train=200, n_eval=20)
    for task in env.train + env.eval:
        a, op, b = PROMPT.match(task.prompt).groups()
        assert op == "-" and len(a) == len(b) == 5 and int(task.answer) >= 0
        assert task.meta["difficulty"] == 5


def test_arithmetic_can_allow_negative_differences():
    env = build_env("arithmetic", digits=3, ops=("-",), allow_negative=True, n_train=200, n_eval=0)
    assert any(t.answer.startswith("-") for t in env.train)


def test_arithmetic_prompts_are_short_ascii_for_the_char_model():
    env = build_env("arithmetic", n_train=200, n_eval=10)
    assert all(t.prompt.isascii() and len(t.prompt) <= 8 for t in env.train)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ops=("/",)), "unknown op"),
        (dict(digits=2, min_digits=3), "min_digits <= digits"),
        (dict(n_train=-1), "n_train must be a non-negative int"),
    ],
)
def test_arithmetic_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_env("arithmetic", **kwargs)
