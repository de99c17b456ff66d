"""`arithmetic`: multi-digit addition, subtraction and multiplication, e.g. prompt `"12+345="`.

Prompts are short ASCII (`*` for multiplication) so the built-in character-level model can read
them. The difficulty knob is `digits`: each operand has between `min_digits` and `digits` digits,
and `meta["difficulty"]` is the larger operand's digit count. Subtraction keeps results
non-negative unless `allow_negative=True`. The reference answer is the exact integer as text.

This module does not judge completions; the `math` reward does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from envs.base import MATH_VOTE, EnvSpec, Task, TaskSet, sample_unique_splits

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class ArithmeticConfig:
    digits: int = 3
    min_digits: int = 1
    ops: tuple[str, ...] = ("+", "-", "*")
    allow_negative: bool = False
    n_train: int = 10_000
    n_eval: int = 500
    seed: int = 0
    template: str = "tiny"

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.digits:
            raise ValueError(
                f"arithmetic: need 1 <= min_digits <= digits, got "
                f"min_digits={self.min_digits}, digits={self.digits}"
            )
        bad = [op for op in self.ops if op not in OPS]
        if bad or not self.ops:
            raise ValueError(f"arithmetic: unknown op(s) {bad}; valid ops: {sorted(OPS)}")
        object.__setattr__(self, "ops", tuple(self.ops))  # YAML lists arrive as lists


def _operand(rng: random.Random, lo_digits: int, hi_digits: int) -> int:
    d = rng.randint(lo_digits, hi_digits)
    return rng.randint(0 if d == 1 else 10 ** (d - 1), 10**d - 1)


def sample_task(cfg: ArithmeticConfig, rng: random.Random) -> Task:
    """One problem drawn from `rng`; pure given the generator state."""
    op = rng.choice(cfg.ops)
    a = _operand(rng, cfg.min_digits, cfg.digits)
    b = _operand(rng, cfg.min_digits, cfg.digits)
    if op == "-" and not cfg.allow_negative and b > a:
        a, b = b, a
    return Task(
        prompt=f"{a}{op}{b}=",
        answer=str(OPS[op](a, b)),
        meta={"difficulty": max(len(str(a)), len(str(b))), "op": op},
    )


def build(cfg: ArithmeticConfig) -> TaskSet:
    train, eval_ = sample_unique_splits(
        lambda rng: sample_task(cfg, rng), cfg.n_train, cfg.n_eval, cfg.seed, "arithmetic"
    )
    return TaskSet(
        "arithmetic",
        train,
        eval_,
        {"math": 1.0, "format": 0.1},
        cfg.template,
        cfg,
        accuracy="math",
        vote=MATH_VOTE,
    )


ENV = EnvSpec(config=ArithmeticConfig, build=build)
