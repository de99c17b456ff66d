"""What the trainer and the evaluator need from a scorer (implemented in `rewards.scoring`).

`scorer(texts, tasks)` returns per-sample verdicts: `total` (the reward the update uses),
`components` (raw reward components), `correct`, `format_ok`, `answers` (for voting),
`has_reasoning`, and `metrics` (reward, accuracy and text diagnostics, already namespaced).
rlreason never parses completions itself: tags and answers are the rewards' business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Scored(Protocol):
    total: list[float]
    components: dict[str, list[float]]
    correct: list[bool]
    format_ok: list[bool]
    answers: list[Any]
    has_reasoning: list[bool]
    metrics: dict[str, float]


class Scorer(Protocol):
    answer_key: Callable[[Any], Any] | None  # equivalent answers share a key (majority vote)

    def __call__(self, texts: list[str], tasks: Sequence[Any]) -> Scored: ...
