"""Evaluation metrics over a set of problems: records in, `eval/*` numbers and a table out.

`summarize` computes every per-problem metric (pass@k, mean@k, maj@k, best-of-n, greedy
accuracy, format rate, mean length) with the estimators of `rlreason.eval.estimators`, averages
them with equal weight per problem, and attaches a percentile-bootstrap confidence interval over
problems. Every bootstrap uses the same seed, so all metrics are resampled with the same problem
draws (paired). The estimators are re-exported here so callers need one import.

Deliberately not here: running the model, extracting or comparing answers, beam search, and the
plot of the scaling curve (`rlreason.eval.plots`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rlreason.eval.estimators import (
    _as_bools,
    best_of_n,
    bootstrap_ci,
    cluster_answers,
    maj_at_k,
    mean_at_k,
    pass_at_k,
)

__all__ = [
    "pass_at_k",
    "mean_at_k",
    "best_of_n",
    "cluster_answers",
    "maj_at_k",
    "bootstrap_ci",
    "ProblemRecord",
    "per_problem_metrics",
    "summarize",
    "format_table",
]


@dataclass(frozen=True)
class ProblemRecord:
    """One problem's n samples. Only `correct` is required; a metric whose inputs are missing
    (None) is skipped for this problem rather than guessed."""

    correct: list[bool]  # (n,) per-sample correctness as judged by the task
    answers: list[str | None] | None = None  # (n,) extracted answers, None where none was found
    scores: list[float] | None = None  # (n,) reward used to pick best-of-n
    format_ok: list[bool] | None = None  # (n,) completion follows the template
    lengths: list[int] | None = None  # (n,) response length in tokens
    difficulty: Any | None = None  # the env's difficulty label, if it has one
    greedy_correct: bool | None = None  # correctness of the greedy (temperature 0) completion

    def __post_init__(self) -> None:
        n = len(self.correct)
        if n == 0:
            raise ValueError("correct is empty: a problem needs at least one sample")
        for f in ("answers", "scores", "format_ok", "lengths"):
            v = getattr(self, f)
            if v is not None and len(v) != n:
                raise ValueError(f"{f} has {len(v)} entries but correct has {n}")


def _as_record(r: ProblemRecord | Mapping[str, Any], i: int) -> ProblemRecord:
    if isinstance(r, ProblemRecord):
        return r
    if not isinstance(r, Mapping):
        raise TypeError(
            f"record {i}: expected a ProblemRecord or a mapping, got {type(r).__name__}"
        )
    unknown = set(r) - {f.name for f in fields(ProblemRecord)}
    if unknown:
        raise ValueError(f"record {i}: unknown keys {sorted(unknown)}")
    try:
        return ProblemRecord(**r)
    except (TypeError, ValueError) as e:
        raise ValueError(f"record {i}: {e}") from e


def _check_ks(ks: Sequence[int], records: Sequence[ProblemRecord]) -> list[int]:
    ks = list(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive ints, got {ks!r}")
    for i, r in enumerate(records):
        if max(ks) > len(r.correct):
            raise ValueError(f"k={max(ks)} exceeds the {len(r.correct)} samples of record {i}")
    return ks


def _problem_values(
    r: ProblemRecord, ks: list[int], opts: dict[str, Any], seed: list[int]
) -> dict[str, float]:
    """Every metric for one problem; NaN where the record lacks the inputs."""
    n, c = len(r.correct), int(_as_bools(r.correct, "correct").sum())
    out: dict[str, float] = {}
    for k in ks:
        out[f"pass@{k}"] = pass_at_k(n, c, k)
        out[f"maj@{k}"] = (
            math.nan
            if r.answers is None
            else maj_at_k(r.answers, r.correct, k, seed=[*seed, k], **opts)
        )
        out[f"mean@{k}"] = mean_at_k(n, c, k)
        out[f"best_of_{k}"] = math.nan if r.scores is None else best_of_n(r.scores, r.correct, k)
    out["greedy_acc"] = math.nan if r.greedy_correct is None else float(bool(r.greedy_correct))
    out["format_rate"] = (
        math.nan if r.format_ok is None else float(_as_bools(r.format_ok, "format_ok").mean())
    )
    out["length_mean"] = math.nan if r.lengths is None else float(np.mean(r.lengths))
    return out


def per_problem_metrics(
    records: Sequence[ProblemRecord | Mapping[str, Any]],
    ks: Sequence[int],
    *,
    key: Callable[[str], Hashable | None] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
) -> dict[str, np.ndarray]:
    """Per-problem metric values, name → (P,) array, NaN where a problem lacks the inputs.

    maj@k of problem i at k is seeded with [seed, i, k]: a problem's value depends only on its
    own samples, its position i and the seed, not on the other problems.
    """
    recs = [_as_record(r, i) for i, r in enumerate(records)]
    if not recs:
        raise ValueError("no records to evaluate")
    ks = _check_ks(ks, recs)
    opts = {"key": key, "equivalent": equivalent, "n_resamples": n_resamples}
    rows = []
    for i, r in enumerate(recs):
        try:
            rows.append(_problem_values(r, ks, opts, [seed, i]))
        except (TypeError, ValueError) as e:
            raise ValueError(f"record {i}: {e}") from e
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}  # (P,) each


def _aggregate(
    per: Mapping[str, np.ndarray],
    idx: np.ndarray,
    prefix: str,
    n_boot: int,
    alpha: float,
    seed: int,
) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, arr in per.items():
        vals = arr[idx][~np.isnan(arr[idx])]
        if vals.size == 0:
            continue
        mean, lo, hi = bootstrap_ci(vals, n_boot=n_boot, alpha=alpha, seed=seed)
        out[prefix + name], out[f"{prefix}{name}_lo"], out[f"{prefix}{name}_hi"] = mean, lo, hi
    out[prefix + "num_problems"] = float(idx.size)
    return out


def _difficulty_groups(recs: Sequence[ProblemRecord]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for i, r in enumerate(recs):
        if r.difficulty is not None:
            groups.setdefault(r.difficulty, []).append(i)
    try:
        return dict(sorted(groups.items()))
    except TypeError:  # mixed label types: keep order of first appearance
        return groups


def summarize(
    records: Sequence[ProblemRecord | Mapping[str, Any]],
    ks: Sequence[int],
    *,
    key: Callable[[str], Hashable | None] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 1000,
) -> dict[str, float]:
    """Flat dict of `eval/*` metrics, each with `_lo`/`_hi` bootstrap bounds over problems.

    Keys: `eval/pass@{k}`, `eval/maj@{k}`, `eval/mean@{k}`, `eval/best_of_{k}`,
    `eval/greedy_acc`, `eval/format_rate`, `eval/length_mean`, `eval/num_problems`, and the
    same under `eval/difficulty/<d>/` for each difficulty label present. A metric is averaged
    over the problems that have its inputs and left out when none do. Format rate and length
    are per-problem means averaged over problems (equal weight per problem).
    """
    recs = [_as_record(r, i) for i, r in enumerate(records)]
    per = per_problem_metrics(
        recs, ks, key=key, equivalent=equivalent, seed=seed, n_resamples=n_resamples
    )
    out = _aggregate(per, np.arange(len(recs)), "eval/", n_boot, alpha, seed)
    for d, idx in _difficulty_groups(recs).items():
        out.update(_aggregate(per, np.array(idx), f"eval/difficulty/{d}/", n_boot, alpha, seed))
    return out


def format_table(metrics: Mapping[str, float]) -> str:
    """Render a `summarize` dict as an aligned text table: metric, value, [lo, hi]."""
    names = [m for m in metrics if not m.endswith(("_lo", "_hi"))]
    if not names:
        return "(no metrics)"
    width = max(len(m) for m in names)

    def fmt(v: float, count: bool = False) -> str:
        return f"{v:.0f}" if count else f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"

    lines = [f"{'metric':<{width}}  {'value':>10}  CI"]
    for m in names:
        ci = ""
        if f"{m}_lo" in metrics and f"{m}_hi" in metrics:
            ci = f"[{fmt(metrics[m + '_lo'])}, {fmt(metrics[m + '_hi'])}]"
        value = fmt(metrics[m], count=m.endswith("num_problems"))
        lines.append(f"{m:<{width}}  {value:>10}  {ci}".rstrip())
    return "\n".join(lines)
