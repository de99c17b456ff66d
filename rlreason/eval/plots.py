"""The inference-time scaling curve: accuracy vs number of samples k, saved as a PNG.

Reads the flat metric dict that `rlreason.eval.metrics.summarize` returns (`eval/pass@{k}` with its
`_lo`/`_hi` bootstrap bounds, `eval/maj@{k}` …) and draws one line per curve with its confidence
band, k on a log2 axis. It draws through matplotlib's object API on an Agg canvas, so it never
touches pyplot's global state or needs a display.

Deliberately not here: computing any metric (see `rlreason.eval.metrics`), or interactive plots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

# Curve label → metric key pattern (without prefix); "{k}" is the number of samples.
CURVES: dict[str, str] = {
    "pass@k": "pass@{k}",
    "maj@k": "maj@{k}",
    "mean@k": "mean@{k}",
    "best-of-k": "best_of_{k}",
}


def curve_points(
    metrics: Mapping[str, float], curve: str, prefix: str = "eval/"
) -> list[tuple[int, float, float, float]]:
    """(k, value, lo, hi) for one curve, sorted by k; lo/hi fall back to the value if absent."""
    if curve not in CURVES:
        raise ValueError(f"unknown curve {curve!r}; known: {sorted(CURVES)}")
    head, tail = CURVES[curve].split("{k}")
    pattern = re.compile(re.escape(prefix + head) + r"(\d+)" + re.escape(tail))
    points = []
    for name, v in metrics.items():
        m = pattern.fullmatch(name)
        if m:
            points.append(
                (
                    int(m.group(1)),
                    float(v),
                    float(metrics.get(name + "_lo", v)),
                    float(metrics.get(name + "_hi", v)),
                )
            )
    return sorted(points)


def plot_scaling_curve(
    metrics: Mapping[str, float],
    path: str | Path,
    *,
    curves: Sequence[str] = ("pass@k", "maj@k"),
    prefix: str = "eval/",
    title: str | None = None,
) -> Path:
    """Save accuracy vs k (log2 axis) for each of `curves`, with CI bands, as a PNG at `path`.

    `prefix` selects a slice of the dict, e.g. "eval/difficulty/3/". Raises if none of the
    requested curves has a point under that prefix.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = {c: curve_points(metrics, c, prefix) for c in curves}
    if not any(series.values()):
        raise ValueError(f"no {list(curves)} metrics under prefix {prefix!r} to plot")
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ks: set[int] = set()
    for curve, pts in series.items():
        if not pts:
            continue
        k, v, lo, hi = (list(col) for col in zip(*pts))
        ks.update(k)
        (line,) = ax.plot(k, v, marker="o", label=curve)
        ax.fill_between(k, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ks), [str(k) for k in sorted(ks)])
    ax.set_xlabel("number of samples k")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or f"inference-time scaling ({prefix.rstrip('/')})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
