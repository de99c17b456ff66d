"""What each stage of a routes run spent, read back from its run directory, and its eval curve.

Per stage: generated tokens (RL: every step's rollouts, `rollout/length_mean` x prompts x G;
rejection sampling: its `generated_tokens`; SFT: none), optimizer steps, training seconds (the
steps' own `perf/step_s` where logged, else the summary's train seconds; evaluations excluded),
and the held-out curve `(step, tokens, seconds, greedy)` from the stage's eval rows, where tokens
and seconds are cumulative within the stage. A route is charged for its stage and every stage it
needs (`stages.plan`).

Not here: running stages (stages.py), the tables and plots (table.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Spent:
    tokens: float = 0.0  # generated tokens
    optimizer_steps: float = 0.0
    seconds: float = 0.0
    trained_tokens: float = 0.0  # SFT: completion tokens learnt from
    curve: list[tuple[int, float, float, float]] = field(default_factory=list)

    def plus(self, other: Spent) -> Spent:
        return Spent(
            self.tokens + other.tokens,
            self.optimizer_steps + other.optimizer_steps,
            self.seconds + other.seconds,
            self.trained_tokens + other.trained_tokens,
        )


def _rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _rows_per_step(run_dir: Path) -> float:
    """Rollouts per RL step (prompts_per_step x group_size) from the stage's config.yaml."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    return float(cfg["train"]["prompts_per_step"] * cfg["algo"]["group_size"])


def stage_spent(run_dir: Path, job: str, summary: dict) -> Spent:
    """The compute of one finished stage (see the module docstring)."""
    if job == "sample":
        return Spent(
            tokens=float(summary.get("generated_tokens", 0)),
            seconds=float(summary.get("seconds", 0.0)),
        )
    rows = _rows(run_dir)
    per_step = _rows_per_step(run_dir) if job == "rl" else 0.0
    train_rows = [r for r in rows if "perf/step_s" in r or "sft/loss" in r]
    s = Spent()
    for r in train_rows:
        s.tokens += r.get("rollout/length_mean", 0.0) * per_step
        s.optimizer_steps += r.get("train/optimizer_steps", 1.0 if job == "sft" else 0.0)
        s.trained_tokens += r.get("sft/tokens", 0.0)
    logged = sum(r.get("perf/step_s", 0.0) for r in train_rows)
    s.seconds = logged or float(summary.get("seconds", {}).get("train", 0.0))
    s.curve = _curve(rows, train_rows, per_step, s.seconds)
    return s


def _curve(rows, train_rows, per_step, seconds) -> list[tuple[int, float, float, float]]:
    """(step, tokens so far, seconds so far, greedy accuracy) at every eval of the stage."""
    cum: dict[int, tuple[float, float]] = {0: (0.0, 0.0)}
    tokens = secs = 0.0
    n = max(len(train_rows), 1)
    for r in sorted(train_rows, key=lambda r: r["step"]):
        tokens += r.get("rollout/length_mean", 0.0) * per_step
        secs += r.get("perf/step_s", seconds / n)
        cum[int(r["step"])] = (tokens, secs)
    out = []
    for r in rows:
        if "eval/greedy_acc" in r:
            step = int(r["step"])
            t, sec = cum.get(step, cum[max(k for k in cum if k <= step)])
            out.append((step, t, sec, float(r["eval/greedy_acc"])))
    return sorted(dict((c[0], c) for c in out).values())


def steps_to(curve, target: float) -> int | None:
    """The first eval step whose greedy accuracy is at least `target` (None: never)."""
    return next((step for step, _, _, acc in curve if acc >= target - 1e-9), None)
