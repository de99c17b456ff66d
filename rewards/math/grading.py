"""`math_reward`: the training/evaluation reward of math tasks, from extraction to verdict.

It reads each completion's graded answer (`rewards.math.extract`, strict or lenient), compares it
with the task's answer through the bounded checker (`reward.check_many_verdicts`) and counts
errors and timeouts. Its option values are checked when the reward is built (`check_options`).

Not here: extraction rules (extract.py), equivalence (reward.py and the modules it uses).
"""

from __future__ import annotations

from envs.base import Task
from envs.tags import THINK_OPEN
from rewards.base import Scores
from rewards.math.extract import DEFAULT_MODE, check_mode, graded_answer
from rewards.math.reward import DEFAULT_TIMEOUT_S, check_many_verdicts


def math_reward(
    completions: list[str],
    tasks: list[Task],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    mode: str = DEFAULT_MODE,
    prefilled: bool = False,
) -> Scores:
    """1.0 per completion whose answer (`rewards.math.extract` in `mode`: "strict" for training,
    "lenient" for free-form outputs) equals its task's answer, else 0.0; counts errors (incl.
    tasks without an answer) and timeouts. Config: `+reward.math.options.mode=lenient`.
    `prefilled`: the prompt opened `<think>`, so text before a `</think>` is reasoning and a
    completion that never closes it has no answer."""
    check_mode(mode)
    if len(completions) != len(tasks):
        raise ValueError(f"math_reward: {len(completions)} completions for {len(tasks)} tasks")
    if prefilled:
        completions = [THINK_OPEN + c if isinstance(c, str) else c for c in completions]
    pairs = [(graded_answer(c, mode) or "", t.answer) for c, t in zip(completions, tasks)]
    verdicts = check_many_verdicts(pairs, timeout_s)
    return Scores(
        [1.0 if v.equal else 0.0 for v in verdicts],
        errors=sum(v.method == "error" for v in verdicts),
        timeouts=sum(v.method == "timeout" for v in verdicts),
    )


def _check_math_options(
    *, timeout_s: float = DEFAULT_TIMEOUT_S, mode: str = DEFAULT_MODE, prefilled: bool = False
) -> None:
    check_mode(mode)
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")


math_reward.check_options = _check_math_options
