"""`code`: a built-in set of small Python problems judged by the sandboxed executor.

The problems live in `envs/data/code_problems.json` (written for this project): function problems
with call-style tests (`{"call": "f(1, 2)", "expected": "3"}`, expected as a Python literal) and
stdin/stdout programs (`{"stdin": ..., "stdout": ...}`). Each record also carries a reference
`solution` and a deliberately `wrong_solution`, used by the tests to show every problem's tests
both accept a right program and reject a wrong one; neither is put into a `Task`.
`meta` holds `id`, `difficulty` (1 easy .. 3 harder) and `entry_point` (None for stdin programs).

This module does not run code; `rewards.code` does, in its sandbox.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from envs.base import EnvSpec, Task, TaskSet, check_split_sizes, shuffle_split
from envs.jsonl import validate_tests

PROBLEMS_PATH = Path(__file__).parent / "data" / "code_problems.json"
KINDS = ("call", "stdio")


@lru_cache(maxsize=1)
def load_problems() -> tuple[dict, ...]:
    """Every built-in problem record, validated (a bad record names its id)."""
    records = json.loads(PROBLEMS_PATH.read_text(encoding="utf-8"))
    for i, rec in enumerate(records):
        try:
            validate_tests(rec["tests"])
            for key in ("id", "prompt", "solution", "wrong_solution"):
                if not isinstance(rec[key], str):
                    raise ValueError(f"{key!r} must be a string")
        except (KeyError, ValueError) as e:
            raise ValueError(f"{PROBLEMS_PATH}: problem #{i} ({rec.get('id')!r}): {e}") from None
    return tuple(records)


def problem_kind(rec: dict) -> str:
    return "call" if rec["entry_point"] else "stdio"


def to_task(rec: dict) -> Task:
    return Task(
        prompt=rec["prompt"],
        answer=None,
        tests=[dict(t) for t in rec["tests"]],
        meta={
            "id": f"code/{rec['id']}",
            "difficulty": rec["difficulty"],
            "entry_point": rec["entry_point"],
        },
    )


@dataclass(frozen=True)
class CodeConfig:
    n_eval: int = 10
    max_difficulty: int = 3
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    template: str = "r1_zero"

    def __post_init__(self) -> None:
        check_split_sizes(0, self.n_eval)
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise ValueError(f"code env: unknown kind(s) {bad}; valid kinds: {list(KINDS)}")
        object.__setattr__(self, "kinds", tuple(self.kinds))


def build(cfg: CodeConfig) -> TaskSet:
    pool = [
        to_task(r)
        for r in load_problems()
        if r["difficulty"] <= cfg.max_difficulty and problem_kind(r) in cfg.kinds
    ]
    if cfg.n_eval > len(pool):
        raise ValueError(
            f"code env: n_eval={cfg.n_eval} but only {len(pool)} problems match "
            f"max_difficulty={cfg.max_difficulty}, kinds={cfg.kinds}"
        )
    train, eval_ = shuffle_split(pool, cfg.n_eval, cfg.seed)
    return TaskSet(
        "code", train, eval_, {"code": 1.0, "format": 0.1}, cfg.template, cfg, accuracy="code"
    )


ENV = EnvSpec(config=CodeConfig, build=build)
