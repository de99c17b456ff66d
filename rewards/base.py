"""Reward contract and composition.

A reward is a plain callable `(completions: list[str], tasks: list[Task]) -> list[float]`.
A reward that isolates its own per-sample failures may return `Scores`, a `list[float]` that also
carries how many samples errored or timed out, so the composer can count them.
"""
from __future__ import annotations


class Scores(list):
    """A list of floats that also counts per-sample `errors` and `timeouts` inside a reward."""

    def __init__(self, values=(), *, errors: int = 0, timeouts: int = 0):
        super().__init__(float(v) for v in values)
        self.errors = int(errors)
        self.timeouts = int(timeouts)
