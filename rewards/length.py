"""Length shaping rewards, optional components for ablations.

- `overlong_reward`: DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): 0 while the length
  L <= max_len - cache_len, then linear down to -1 at L = max_len, and -1 beyond.
- `make_cosine_length_reward`: the cosine length-scaled reward of Yeo et al. 2025,
  "Demystifying Long Chain-of-Thought Reasoning in LLMs" (§4, CosFn): shorter is better when
  correct, longer is penalised less when wrong; reaching max_len scores r_exceed. Defaults
  (2, 1, -10, 0, -10) are the paper's settings as we read them.

Lengths are whatever `length_fn(completion)` returns ("chars" by default, "words", or e.g.
`lambda s: len(tokenizer.encode(s))`), and `max_len` / `cache_len` are in that unit. Departure:
the cosine reward gets correctness by calling another reward, so a composition that also has
that reward computes it twice. Not done here: token-level length penalties inside the loss, or
length normalisation of advantages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rewards.base import RewardFn, Scores
from rewards.registry import build_reward

if TYPE_CHECKING:
    from envs.base import Task

LengthFn = Callable[[str], int]


def _word_count(text: str) -> int:
    return len(text.split())


LENGTH_FNS: dict[str, LengthFn] = {"chars": len, "words": _word_count}


def _length_fn(length_fn: str | LengthFn) -> LengthFn:
    if callable(length_fn):
        return length_fn
    if length_fn not in LENGTH_FNS:
        raise ValueError(
            f"length_fn {length_fn!r} is unknown; known: {sorted(LENGTH_FNS)}"
            f" or a callable str -> int"
        )
    return LENGTH_FNS[length_fn]


def overlong_penalty(length: int, max_len: int, cache_len: int) -> float:
    """DAPO soft overlong punishment: 0 if length <= max_len - cache_len, else
    (max_len - cache_len - length) / cache_len while length <= max_len, else -1."""
    if not 0 < cache_len <= max_len:
        raise ValueError(
            f"overlong_penalty: need 0 < cache_len <= max_len, got"
            f" cache_len={cache_len}, max_len={max_len}"
        )
    if length < 0:
        raise ValueError(f"overlong_penalty: length must be >= 0, got {length}")
    free = max_len - cache_len
    if length <= free:
        return 0.0
    if length <= max_len:
        return (free - length) / cache_len
    return -1.0


def cosine_length_reward(
    correct: bool,
    length: int,
    max_len: int,
    *,
    r0_correct: float = 2.0,
    rL_correct: float = 1.0,
    r0_wrong: float = -10.0,
    rL_wrong: float = 0.0,
    r_exceed: float = -10.0,
) -> float:
    """Yeo et al. 2025 cosine reward: rL + (r0 - rL) * (1 + cos(pi * length / max_len)) / 2,
    with (r0, rL) = (r0_correct, rL_correct) or (r0_wrong, rL_wrong); r_exceed when
    length >= max_len (a completion that used the whole budget was cut off)."""
    if max_len <= 0:
        raise ValueError(f"cosine_length_reward: max_len must be > 0, got {max_len}")
    if length < 0:
        raise ValueError(f"cosine_length_reward: length must be >= 0, got {length}")
    if length >= max_len:
        return float(r_exceed)
    r0, rL = (r0_correct, rL_correct) if correct else (r0_wrong, rL_wrong)
    return rL + (r0 - rL) * 0.5 * (1.0 + math.cos(math.pi * length / max_len))


def overlong_reward(
    completions: list[str],
    tasks: list[Task],
    *,
    max_len: int,
    cache_len: int,
    length_fn: str | LengthFn = "chars",
) -> list[float]:
    """`overlong_penalty(length_fn(completion), max_len, cache_len)` per completion (DAPO)."""
    measure = _length_fn(length_fn)
    return [overlong_penalty(measure(c), max_len, cache_len) for c in completions]


def make_cosine_length_reward(
    *,
    max_len: int,
    correctness: str | RewardFn = "math",
    correctness_options: Mapping[str, Any] | None = None,
    correct_threshold: float = 1.0,
    length_fn: str | LengthFn = "chars",
    **cosine_kwargs: float,
) -> RewardFn:
    """Factory: a reward scoring `cosine_length_reward(correct, length_fn(c), max_len, ...)`.

    `correctness` is a registry name (built with `rewards.registry.build_reward` and
    `correctness_options`, e.g. `{"prefilled": True}`) or a reward callable; sample i is correct
    iff its score >= `correct_threshold`. `cosine_kwargs` are the
    r0_correct/rL_correct/r0_wrong/rL_wrong/r_exceed values. Errors and timeouts counted by the
    correctness reward are passed on in the returned `Scores`.
    """
    if isinstance(correctness, str):
        judge = build_reward(correctness, **dict(correctness_options or {}))
    elif correctness_options:
        raise ValueError("make_cosine_length_reward: correctness_options need a registry name")
    else:
        judge = correctness
    measure = _length_fn(length_fn)
    cosine_length_reward(True, 0, max_len, **cosine_kwargs)  # fail fast on bad settings

    def cosine_length(completions: list[str], tasks: list[Task]) -> Scores:
        verdicts = judge(completions, tasks)
        if len(verdicts) != len(completions):
            raise ValueError(
                f"cosine_length: correctness reward returned {len(verdicts)}"
                f" scores for {len(completions)} completions"
            )
        values = [
            cosine_length_reward(v >= correct_threshold, measure(c), max_len, **cosine_kwargs)
            for c, v in zip(completions, verdicts)
        ]
        return Scores(
            values, errors=getattr(verdicts, "errors", 0), timeouts=getattr(verdicts, "timeouts", 0)
        )

    return cosine_length
