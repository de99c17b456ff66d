"""The `Task` record every environment produces and every reward consumes.

A `Task` is a frozen, JSON-serialisable dataclass:
- `prompt`: the problem statement (not yet rendered by a template);
- `answer`: the reference answer as text (math/countdown), or None;
- `tests`: for code tasks, a list of test cases, each a dict of one of two forms:
  `{"stdin": "...", "stdout": "..."}` or `{"call": "f(1, 2)", "expected": "3"}`; None otherwise;
- `meta`: free-form JSON-serialisable extras (difficulty, language, numbers, entry_point, id …).

This module does not generate tasks or render prompts; envs and templates do.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


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
    def from_dict(cls, d: dict[str, Any]) -> "Task":
        unknown = set(d) - {"prompt", "answer", "tests", "meta"}
        if unknown:
            raise ValueError(f"Task.from_dict: unknown keys {sorted(unknown)}")
        if not isinstance(d.get("prompt"), str):
            raise ValueError("Task.from_dict: 'prompt' must be a string")
        return cls(prompt=d["prompt"], answer=d.get("answer"), tests=d.get("tests"),
                   meta=dict(d.get("meta") or {}))

    @classmethod
    def from_json(cls, s: str) -> "Task":
        return cls.from_dict(json.loads(s))
