"""Reading a run directory: `metrics.jsonl` as series, the resolved config flattened to dotted keys.

A run directory holds `metrics.jsonl` (one JSON object per logged step) and the resolved config
(`config.yaml`); `load_run` reads both, `find_runs` finds run directories under the given paths.
Unreadable lines are skipped and noted, never fatal; bad input raises `ReportError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from experiments.report.plots import (
    Series,
)


class ReportError(ValueError):
    """Bad input to a report (missing run directory, unreadable config); the message says which."""


# ---------------------------------------------------------------------------- reading runs
def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    try:
        return float(v)  # "nan", "inf", "-inf" as the JSONL logger writes them
    except ValueError:
        return None


def read_metrics(path: Path, notes: list[str] | None = None) -> dict[str, Series]:
    """Per-key series from a metrics.jsonl; a later row wins a repeated step (resumed runs)."""
    by_key: dict[str, dict[int, float]] = {}
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            if notes is not None:
                notes.append(f"{path}:{lineno}: not a JSON object with an integer step; skipped")
            continue
        for key, value in row.items():
            x = _number(value)
            if key != "step" and x is not None:
                by_key.setdefault(key, {})[row["step"]] = x
    return {
        k: Series(
            np.array(sorted(d), dtype=float), np.array([d[s] for s in sorted(d)], dtype=float)
        )
        for k, d in by_key.items()
    }


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flatten(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def _read_json(path: Path, notes: list[str]) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        notes.append(f"{path}: unreadable ({e}); ignored")
        return {}
    return data if isinstance(data, dict) else {}


def read_config(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ReportError(
            f"{run_dir}: no config.yaml, so its arm cannot be told (not a run directory?)"
        )
    try:
        return flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as e:
        raise ReportError(f"{path}: not valid YAML: {e}") from e


@dataclass
class Run:
    path: Path
    metrics: dict[str, Series]
    summary: dict = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # flattened, dotted keys
    notes: list[str] = field(default_factory=list)


def load_run(run_dir: str | Path, require_config: bool = True) -> Run:
    """Metrics, summary and flattened config of a run; without `require_config` a missing one is {}."""
    path, notes = Path(run_dir), []
    metrics = read_metrics(path / "metrics.jsonl", notes)
    config: dict[str, Any] = {}
    try:
        if require_config or (path / "config.yaml").is_file():
            config = read_config(path)
    except ReportError as e:
        if require_config:
            raise
        notes.append(str(e))
    return Run(path, metrics, _read_json(path / "summary.json", notes), config, notes)


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named directly (with a metrics.jsonl) or found under the given paths (with a
    metrics.jsonl and a config.yaml: an evaluation's output folder is not a run)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p}: no such run directory")
        inside = (
            [p]
            if (p / "metrics.jsonl").is_file()
            else sorted(  # a searched folder: runs hold a config.yaml (evaluations do not)
                f.parent for f in p.rglob("metrics.jsonl") if (f.parent / "config.yaml").is_file()
            )
        )
        if not inside:
            raise ReportError(f"{p}: no metrics.jsonl in it or below it (not a run directory?)")
        found += [d for d in inside if d not in found]
    return found


# ---------------------------------------------------------------------------- series helpers
def last_step(run: Run) -> int:
    return max((int(s.steps[-1]) for s in run.metrics.values() if len(s.steps)), default=0)
