"""Figures for the run and comparison reports: which curves to draw, their bands, one PNG each.

A `PlotSpec` names a figure and the metric keys (or fnmatch patterns) on it; `RUN_PLOTS` and
`COMPARE_PLOTS` are the two registries. `run_curves` makes one run's curves (eval keys with the
evaluation's own bootstrap band from `_lo`/`_hi`; training keys lightly smoothed over the raw
trace); `arm_curve` averages an arm's seeds step by step with a 95% Student-t band (`mean_ci`,
also used for the comparison table so curves and table agree); `last_value` and `steps_to_target`
read a series' final value and first step at a target. `draw` writes the PNG with
matplotlib's object API (`Figure` + the Agg canvas), never `pyplot`, so it keeps no global figure
state and works whatever backend the calling process selected.

Not here: reading run directories (`runs.py`), markdown (`run_report.py`, `build.py`), the CLI
(`build.py`).
"""

from __future__ import annotations

import fnmatch
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Series(NamedTuple):
    steps: np.ndarray  # (N,) increasing steps
    values: np.ndarray  # (N,) floats, NaN where the run logged a non-finite value


@dataclass(frozen=True)
class PlotSpec:
    name: str  # PNG file stem
    title: str
    ylabel: str
    keys: tuple[str, ...]  # metric keys or fnmatch patterns


RUN_PLOTS = (
    PlotSpec(
        "accuracy",
        "Held-out accuracy (greedy and sampled) and train accuracy",
        "accuracy",
        ("eval/greedy_acc", "eval/pass@1", "accuracy"),
    ),
    PlotSpec("rewards", "Reward components (train, mean per step)", "reward", ("reward/*/mean",)),
    PlotSpec(
        "format_rate", "Format rate", "share", ("eval/format_rate", "eval/greedy_format_rate")
    ),
    PlotSpec(
        "length",
        "Response length",
        "tokens",
        ("rollout/length_mean", "eval/length_mean", "eval/greedy_length_mean"),
    ),
    PlotSpec(
        "think_rate",
        "Completions that reason in <think>",
        "share",
        ("rollout/think_rate", "eval/think_rate", "eval/greedy_think_rate"),
    ),
    PlotSpec("kl", "KL to the reference policy", "KL", ("policy/kl",)),
    PlotSpec("entropy", "Policy entropy", "nats per token", ("policy/entropy",)),
    PlotSpec("lr", "Learning rate", "lr", ("lr",)),
)
COMPARE_PLOTS = (
    PlotSpec("greedy_accuracy", "Held-out greedy accuracy", "accuracy", ("eval/greedy_acc",)),
    PlotSpec(
        "sampled_accuracy", "Held-out sampled accuracy (pass@1)", "accuracy", ("eval/pass@1",)
    ),
    PlotSpec("train_accuracy", "Train accuracy (sampled rollouts)", "accuracy", ("accuracy",)),
    PlotSpec("format_rate", "Held-out format rate", "share", ("eval/format_rate",)),
    PlotSpec("length", "Held-out response length", "tokens", ("eval/length_mean",)),
)
LABELS = {
    "eval/greedy_acc": "held-out greedy",
    "eval/pass@1": "held-out sampled (pass@1)",
    "accuracy": "train (sampled)",
    "eval/format_rate": "held-out sampled",
    "eval/greedy_format_rate": "held-out greedy",
    "rollout/length_mean": "train rollouts",
    "eval/length_mean": "held-out sampled",
    "eval/greedy_length_mean": "held-out greedy",
    "rollout/think_rate": "train rollouts",
    "eval/think_rate": "held-out sampled",
    "eval/greedy_think_rate": "held-out greedy",
}


# Student t quantiles t(0.975, df) for df = 1..30; larger df use the Cornish-Fisher series.
T975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
CI_METHOD = "95% Student-t interval across seeds: mean +- t(0.975, n-1) * s / sqrt(n)"


@dataclass
class Curve:
    x: np.ndarray  # (N,) steps
    y: np.ndarray  # (N,) the line
    label: str
    lo: np.ndarray | None = None  # (N,) lower edge of a shaded band (NaN: no band there)
    hi: np.ndarray | None = None  # (N,) upper edge
    raw: np.ndarray | None = None  # (N,) unsmoothed values, drawn faintly behind the line
    markers: bool = False  # eval curves have few points: mark each one


def smoothing_half_window(n_points: int) -> int:
    """Light smoothing: none below 50 points, then +-1 step per 50 points (2% of the run)."""
    return n_points // 50


def smooth(y: np.ndarray, half_window: int) -> np.ndarray:
    """Centred moving average over 2*half_window+1 points; NaNs are skipped; windows shrink at the ends."""
    y = np.asarray(y, dtype=float)  # (N,)
    if half_window <= 0 or y.size == 0:
        return y.copy()
    ok = np.isfinite(y)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, y, 0.0))])  # (N+1,)
    ccount = np.concatenate([[0], np.cumsum(ok)])  # (N+1,)
    idx = np.arange(y.size)
    lo, hi = np.maximum(idx - half_window, 0), np.minimum(idx + half_window + 1, y.size)
    count = ccount[hi] - ccount[lo]  # (N,)
    total = csum[hi] - csum[lo]
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _finite(v: np.ndarray | None) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)  # inf would wreck the axis limits


def draw(path: Path, curves: list[Curve], title: str, ylabel: str, xlabel: str = "step") -> Path:
    """Write one PNG with every curve (line, band, raw trace share a colour); returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, c in enumerate(curves):
        color = f"C{i % 10}"
        x = np.asarray(c.x, dtype=float)
        if c.raw is not None:
            ax.plot(x, _finite(c.raw), color=color, alpha=0.25, linewidth=0.8)
        if c.lo is not None and c.hi is not None:
            ax.fill_between(x, _finite(c.lo), _finite(c.hi), color=color, alpha=0.2, linewidth=0)
        ax.plot(
            x,
            _finite(c.y),
            color=color,
            label=c.label,
            linewidth=1.5,
            marker="o" if c.markers else None,
            markersize=3,
        )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------------- statistics
def t975(df: int) -> float:
    if df < 1:
        raise ValueError(f"t975: degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959963984540054
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def mean_ci(values) -> tuple[float, float, int]:
    """(mean, CI half-width, n) over the finite values; half-width NaN below two values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    if v.size == 1:
        return float(v[0]), math.nan, 1
    return float(v.mean()), t975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size), int(v.size)


def last_value(s: Series | None) -> float:
    """The last finite value of a series (NaN when there is none)."""
    if s is None:
        return math.nan
    ok = np.isfinite(s.values)
    return float(s.values[ok][-1]) if ok.any() else math.nan


def steps_to_target(s: Series | None, target: float) -> int | None:
    """First step whose value is at or above `target`; None when the run never gets there."""
    if s is None:
        return None
    hit = np.flatnonzero(np.isfinite(s.values) & (s.values >= target))
    return int(s.steps[hit[0]]) if hit.size else None


# ---------------------------------------------------------------------------- curves
def values_at(s: Series | None, steps: np.ndarray) -> np.ndarray:
    """Values of `s` at `steps` (NaN where it has none)."""
    lookup = dict(zip(s.steps.tolist(), s.values.tolist())) if s is not None else {}
    return np.array([lookup.get(x, math.nan) for x in steps.tolist()], dtype=float)


def expand_keys(metrics: dict[str, Series], patterns: tuple[str, ...]) -> list[str]:
    keys: list[str] = []
    for pattern in patterns:
        keys += [k for k in sorted(fnmatch.filter(metrics, pattern)) if k not in keys]
    return [k for k in keys if np.isfinite(metrics[k].values).any()]


def run_curves(metrics: dict[str, Series], spec: PlotSpec) -> list[Curve]:
    """One run's curves for a plot: eval keys with their bootstrap band, train keys smoothed over raw."""
    curves = []
    for key in expand_keys(metrics, spec.keys):
        s = metrics[key]
        if key.startswith("eval/"):
            lo, hi = (values_at(metrics.get(key + end), s.steps) for end in ("_lo", "_hi"))
            curves.append(Curve(s.steps, s.values, LABELS.get(key, key), lo, hi, markers=True))
            continue
        half = smoothing_half_window(len(s.values))
        curves.append(
            Curve(
                s.steps,
                smooth(s.values, half),
                LABELS.get(key, key),
                raw=s.values if half else None,
            )
        )
    return curves


def arm_curve(series: list[Series], key: str, label: str) -> Curve | None:
    """Mean of one metric across an arm's seeds at every step any seed logged, with the t band."""
    if not series:
        return None
    if not key.startswith("eval/"):
        series = [
            Series(s.steps, smooth(s.values, smoothing_half_window(len(s.values)))) for s in series
        ]
    steps = np.unique(np.concatenate([s.steps for s in series]))  # (N,)
    grid = np.stack([values_at(s, steps) for s in series])  # (seeds, N)
    stats = np.array([mean_ci(col) for col in grid.T], dtype=float)  # (N, 3)
    if not np.isfinite(stats[:, 0]).any():
        return None
    mean, half = stats[:, 0], stats[:, 1]
    return Curve(steps, mean, label, mean - half, mean + half, markers=key.startswith("eval/"))


def draw_specs(
    specs, curves_of: Callable[[PlotSpec], list[Curve]], out_dir: Path, notes: list[str]
) -> list[tuple[PlotSpec, str]]:
    """Draw each spec whose curves exist; [(spec, PNG name)], skips and failures go to `notes`."""
    drawn = []
    for spec in specs:
        try:
            curves = curves_of(spec)
            if not curves:
                notes.append(f"plot `{spec.name}` skipped: no data for {', '.join(spec.keys)}")
                continue
            draw(out_dir / f"{spec.name}.png", curves, spec.title, spec.ylabel)
            drawn.append((spec, f"{spec.name}.png"))
        except Exception as e:  # a broken plot must not cost the finished run its report
            notes.append(f"plot `{spec.name}` failed: {type(e).__name__}: {e}")
            print(f"[rlreason] report: plot {spec.name} failed: {e!r}", file=sys.stderr)
    return drawn
