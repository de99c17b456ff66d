"""The `Task` record every environment produces and every reward consumes.

A `Task` is a frozen, JSON-serialisable dataclass:
- `prompt`: the problem statement (not yet rendered by a template);
- `answer`: the reference answer as text (math/countdown), or None;
- `tests`: for code tasks, a list of test cases, each a dict of one of two forms:
  `{"stdin": "...", "stdout": "..."}` or `{"call": "f(1, 2)", "expected": "3"}`; None otherwise;
- `meta`: free-form JSON-serialisable extras (difficulty, language, numbers, entry_point, id …).

It also holds the `Env` protocol (named train/eval splits, default rewards and template, and how
answers are verified and voted),
the `ENVS` registry with `build_env(name, **kwargs)`, and seeded split helpers that guarantee
train and eval never share a prompt.

This module does not generate tasks or render prompts; the env modules and templates do.
"""

from __future__ import annotations

import importlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Task:
    prompt: str
    answer: str | None = None
    tests: list[dict[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        unknown = set(d) - {"prompt", "answer", "tests", "meta"}
        if unknown:
            raise ValueError(f"Task.from_dict: unknown keys {sorted(unknown)}")
        if not isinstance(d.get("prompt"), str):
            raise ValueError("Task.from_dict: 'prompt' must be a string")
        return cls(
            prompt=d["prompt"],
            answer=d.get("answer"),
            tests=d.get("tests"),
            meta=dict(d.get("meta") or {}),
        )

    @classmethod
    def from_json(cls, s: str) -> Task:
        return cls.from_dict(json.loads(s))


# --------------------------------------------------------------------------- environments


@runtime_checkable
class Env(Protocol):
    """What the trainer needs from an environment, and how its answers are judged.

    `train` / `eval` are indexable with `len()`; `template` names the default entry of
    `envs.templates.TEMPLATES`. Declared once, by the env (`TaskSet` fields, read by
    `rewards.scoring`): `rewards`, component name -> default weight (reward-registry names, or
    a reward the env module defines itself, listed in its `EnvSpec.rewards`); `accuracy`, the
    component that decides correctness (None: the first of `rewards`); `vote`, "module:attr"
    paths of the answer extractor and the answer key for majority voting (None: answers do not
    vote). Paths are strings so that envs never import rewards.
    """

    name: str
    train: Sequence[Task]
    eval: Sequence[Task]
    rewards: dict[str, float]
    template: str


# Majority voting on math answers: extract the graded answer, key it by its canonical form.
MATH_VOTE = ("rewards.math:extract_answer", "rewards.math:canonical_answer")


@dataclass(frozen=True)
class TaskSet:
    """The concrete `Env` every built-in builder returns: two immutable splits plus defaults."""

    name: str
    train: tuple[Task, ...]
    eval: tuple[Task, ...]
    rewards: dict[str, float]
    template: str
    config: Any = None
    accuracy: str | None = None  # the reward that decides correctness (None: the first reward)
    vote: tuple[str, str] | None = None  # "module:attr" answer extractor and answer key

    def __repr__(self) -> str:  # the splits are long; keep logs readable
        return (
            f"TaskSet(name={self.name!r}, train={len(self.train)}, eval={len(self.eval)}, "
            f"rewards={self.rewards}, template={self.template!r})"
        )


@dataclass(frozen=True)
class EnvSpec:
    """A registry entry: a config dataclass, a pure `build(config) -> Env`, and the rewards the
    env module defines itself (name -> "module:attr"), found by `rewards.registry` by name."""

    config: type
    build: Callable[[Any], Env]
    rewards: dict[str, str] = field(default_factory=dict)


# Lazy "module:attr" paths so importing `envs.base` stays cheap and free of import cycles.
ENVS: dict[str, str | EnvSpec] = {
    "arithmetic": "envs.arithmetic:ENV",
    "countdown": "envs.countdown:ENV",
    "code": "envs.code:ENV",
    "multilingual": "envs.multilingual:ENV",
    "jsonl": "envs.jsonl:ENV",
}


def register_env(name: str, spec: EnvSpec | str) -> None:
    """Add (or replace) an environment under `name`."""
    ENVS[name] = spec


def env_spec(name: str) -> EnvSpec:
    """Resolve a registry entry, importing its module on first use."""
    if name not in ENVS:
        raise KeyError(f"unknown env {name!r}; valid envs: {sorted(ENVS)}")
    entry = ENVS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        ENVS[name] = entry
    return entry


def make_config(config_cls: type, kwargs: dict[str, Any], where: str) -> Any:
    """Build a config dataclass from keyword arguments; unknown keys list the valid ones."""
    valid = [f.name for f in fields(config_cls)]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TypeError(f"{where}: unknown option(s) {unknown}; valid options: {valid}")
    return config_cls(**kwargs)


def build_env(name: str, **kwargs: Any) -> Env:
    """Build the registered env `name` from config keyword arguments."""
    spec = env_spec(name)
    return spec.build(make_config(spec.config, kwargs, f"env {name!r}"))


# --------------------------------------------------------------------------- seeded splits


def check_split_sizes(n_train: int, n_eval: int) -> None:
    for label, n in (("n_train", n_train), ("n_eval", n_eval)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{label} must be a non-negative int, got {n!r}")


def sample_unique_splits(
    sample: Callable[[random.Random], Task],
    n_train: int,
    n_eval: int,
    seed: int,
    name: str,
    key: Callable[[Task], str] = lambda t: t.prompt,
) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
    """Draw `n_eval` then `n_train` distinct tasks from one `random.Random(seed)` stream.

    Eval is drawn first, so it depends only on `(seed, n_eval)` and stays fixed when `n_train`
    changes. No key (prompt by default) appears twice, so train and eval never overlap.
    Each task gets `meta["id"] = "<name>/<split>/<i>"`. Raises when the task space is too small.
    """
    check_split_sizes(n_train, n_eval)
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Task] = []
    wanted = n_train + n_eval
    budget = 50 * wanted + 1000
    while len(out) < wanted and budget > 0:
        budget -= 1
        task = sample(rng)
        k = key(task)
        if k not in seen:
            seen.add(k)
            out.append(task)
    if len(out) < wanted:
        raise ValueError(
            f"env {name!r}: found only {len(out)} distinct tasks of the {wanted} "
            f"requested (n_train={n_train}, n_eval={n_eval}); the task space is too "
            "small for these settings: ask for fewer or make the tasks harder"
        )
    return with_ids(out[n_eval:], name, "train"), with_ids(out[:n_eval], name, "eval")


def with_ids(tasks: Sequence[Task], name: str, split: str) -> tuple[Task, ...]:
    """Copies of `tasks` whose meta carries a stable `id` (an existing id is kept)."""
    return tuple(
        replace(t, meta={"id": f"{name}/{split}/{i}", **t.meta}) for i, t in enumerate(tasks)
    )


def shuffle_split(
    tasks: Sequence[Task], n_eval: int, seed: int
) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
    """Seeded shuffle of a fixed pool, then the first `n_eval` are eval and the rest train."""
    if not 0 <= n_eval <= len(tasks):
        raise ValueError(f"n_eval={n_eval} must be between 0 and the pool size {len(tasks)}")
    order = list(range(len(tasks)))
    random.Random(seed).shuffle(order)
    pool = [tasks[i] for i in order]
    return tuple(pool[n_eval:]), tuple(pool[:n_eval])
