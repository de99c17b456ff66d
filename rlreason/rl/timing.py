"""Step bookkeeping: wall time per phase (`PhaseClock`) and rollout shape metrics.

Not here: text or reward diagnostics (the scorer computes them on the rewards side).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

STEP_PHASES = ("gen", "reward", "ref", "train")


class PhaseClock:
    """Times the phases of one step; adds them to the run's running totals as it goes."""

    def __init__(self, totals: dict[str, float]):
        self.totals, self.spent, self.start = (
            totals,
            dict.fromkeys(STEP_PHASES, 0.0),
            time.perf_counter(),
        )

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.spent[phase] = self.spent.get(phase, 0.0) + dt
            self.totals[phase] = self.totals.get(phase, 0.0) + dt

    def metrics(self) -> dict[str, float]:
        """`perf/step_s`, `perf/<phase>_s`, `perf/other_s` (the rest) and `perf/peak_mem_mb`."""
        step_s = time.perf_counter() - self.start
        out = {f"perf/{p}_s": self.spent[p] for p in STEP_PHASES}
        other = step_s - sum(out.values())
        self.totals["other"] = self.totals.get("other", 0.0) + other
        return {
            "perf/step_s": step_s,
            **out,
            "perf/other_s": other,
            "perf/peak_mem_mb": peak_memory_mb(),
        }


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def rollout_metrics(lengths: list[int], finish: list[str], correct: list[bool]) -> dict[str, float]:
    """Lengths (overall, of right and of wrong answers) and finish-reason shares of a batch."""
    n = len(lengths)
    return {
        "rollout/length_mean": sum(lengths) / n,
        "rollout/length_min": float(min(lengths)),
        "rollout/length_max": float(max(lengths)),
        "rollout/length_correct": _mean([x for x, c in zip(lengths, correct) if c]),
        "rollout/length_wrong": _mean([x for x, c in zip(lengths, correct) if not c]),
        "rollout/truncation_rate": finish.count("length") / n,
        **{f"rollout/finish_{k}": finish.count(k) / n for k in ("stop", "eos", "length")},
    }
