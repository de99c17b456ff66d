"""Per-problem estimators: pass@k, mean@k, best-of-n, maj@k, and the percentile bootstrap.

Each is a pure function of one problem's per-sample outcomes (correctness, extracted answers,
scores) that the caller has already computed; answer equivalence comes in as a callable, so this
module imports neither `envs`, `rewards` nor Hydra and never reads model text.

- pass@k: the unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), evaluated as
  the product 1 - prod_{i=n-c+1..n} (1 - k/i), so no huge binomials are formed.
- mean@k: c/n whatever k is (linearity); reported per k only so tables line up.
- best-of-k: the highest-scoring of k samples drawn without replacement (ties go to the earlier
  sample), exact: the sample ranked r-th wins a k-subset with probability C(n-1-r, k-1) / C(n, k).
- maj@k: majority vote over k samples drawn without replacement; see `maj_at_k`.

Aggregation over problems lives in `rlreason.eval.metrics`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "pass_at_k",
    "mean_at_k",
    "best_of_n",
    "cluster_answers",
    "maj_at_k",
    "bootstrap_ci",
]

_BOOT_CHUNK = 256  # bootstrap replicates drawn per block; fixed so results depend on seed only


def _check_nck(n: int, c: int, k: int, what: str) -> None:
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{what}: {name} must be an int, got {v!r}")
    if n < 1:
        raise ValueError(f"{what}: need at least one sample, got n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"{what}: correct count c={c} must lie in [0, n={n}]")
    if not 1 <= k <= n:
        raise ValueError(f"{what}: k={k} must lie in [1, n={n}] (cannot draw {k} of {n} samples)")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: probability that at least one of k samples drawn from n is correct."""
    _check_nck(n, c, k, "pass_at_k")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    fail = 1.0  # C(n-c, k) / C(n, k) = prod_{i=n-c+1..n} (1 - k/i)
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def mean_at_k(n: int, c: int, k: int) -> float:
    """Expected mean accuracy of k samples drawn from n: c/n for every valid k."""
    _check_nck(n, c, k, "mean_at_k")
    return c / n


def _as_bools(values: Sequence[Any], what: str) -> np.ndarray:
    bad = [
        i for i, v in enumerate(values) if not isinstance(v, (bool, np.bool_)) and v not in (0, 1)
    ]
    if bad:
        raise ValueError(f"{what}: entry {bad[0]} is {values[bad[0]]!r}, expected a bool")
    return np.asarray(values, dtype=bool)  # (n,)


def best_of_n(scores: Sequence[float], correct: Sequence[bool], k: int) -> float:
    """Expected correctness of the highest-scoring of k samples drawn from the n given.

    Ties in score go to the sample that comes first in sample order. The expectation over all
    C(n, k) subsets is exact (closed form, see the module docstring); NaN scores are an error.
    """
    ok = _as_bools(correct, "best_of_n correct")
    s = np.asarray(scores, dtype=float)  # (n,)
    if s.shape != ok.shape:
        raise ValueError(f"best_of_n: {s.size} scores but {ok.size} correctness flags")
    _check_nck(int(ok.size), int(ok.sum()), k, "best_of_n")
    if np.isnan(s).any():
        raise ValueError(f"best_of_n: score {int(np.argmax(np.isnan(s)))} is NaN")
    n = s.size
    order = np.lexsort((np.arange(n), -s))  # best first; equal scores keep sample order
    total = math.comb(n, k)
    weights = [math.comb(n - 1 - r, k - 1) / total for r in range(n)]  # P(rank r wins)
    return float(np.dot(weights, ok[order]))


def cluster_answers(
    answers: Sequence[str | None],
    *,
    key: Callable[[str], Hashable | None] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
) -> np.ndarray:
    """Label each answer with a cluster id (0, 1, … in order of first appearance); None → -1.

    With `key`, answers with equal `key(answer)` share a cluster; a key of None means "no
    answer". With `equivalent`, clustering is greedy in sample order: an answer joins the first
    existing cluster whose representative (first member) it is equivalent to, else opens a new
    one, so a non-transitive relation is resolved by sample order. With neither, identical
    strings share a cluster; normalising answers is the caller's job.
    """
    if key is not None and equivalent is not None:
        raise ValueError("cluster_answers: pass either key or equivalent, not both")
    labels = np.full(len(answers), -1, dtype=np.int64)  # (n,)
    reps: list[str] = []  # first member of each cluster, for `equivalent`
    ids: dict[Hashable, int] = {}  # key value → cluster id, for `key`
    for i, a in enumerate(answers):
        if a is None:
            continue
        try:
            if equivalent is not None:
                j = next((j for j, r in enumerate(reps) if equivalent(r, a)), len(reps))
                reps += [a] if j == len(reps) else []
            else:
                h = a if key is None else key(a)
                j = -1 if h is None else ids.setdefault(h, len(ids))
        except Exception as e:
            what = "equivalent" if equivalent is not None else "key"
            raise ValueError(f"cluster_answers: {what} failed on answer {i} ({a!r}): {e}") from e
        labels[i] = j
    return labels


def _subsets(n: int, k: int, n_resamples: int, seed: int | Sequence[int]) -> np.ndarray:
    """All k-subsets of range(n) if there are at most n_resamples, else n_resamples uniform
    random ones (a row's order is arbitrary). Shape (m, k)."""
    if math.comb(n, k) <= n_resamples:
        return np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    rng = np.random.default_rng(seed)
    rows = np.broadcast_to(np.arange(n), (n_resamples, n))  # (m, n)
    return rng.permuted(rows, axis=1)[:, :k]  # (m, k) each row shuffled independently


def _vote(labels: np.ndarray, ok: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """Correctness of the majority vote in each subset. labels/ok (n,), subsets (m, k) → (m,).

    Every member of a cluster sees the cluster's vote count, so the member with the most votes
    and, among those, the smallest sample index is the first member of the winning cluster.
    """
    m, k = subsets.shape
    n, n_clusters = labels.size, int(labels.max()) + 1
    if n_clusters == 0:  # no sample has an answer: every vote is wrong
        return np.zeros(m, dtype=bool)
    rows = np.arange(m)[:, None]  # (m, 1)
    lab = labels[subsets]  # (m, k)
    has = lab >= 0  # (m, k)
    flat = (rows * n_clusters + np.maximum(lab, 0))[has]  # (votes,)
    counts = np.bincount(flat, minlength=m * n_clusters).reshape(m, n_clusters)  # (m, C)
    votes = np.where(has, counts[rows, np.maximum(lab, 0)], 0)  # (m, k) votes of own cluster
    rank = votes * (n + 1) - subsets  # (m, k) most votes first, then earliest sample
    win = rank.argmax(axis=1)  # (m,) position of the winning cluster's first member
    return ok[subsets[rows[:, 0], win]] & (votes[rows[:, 0], win] > 0)


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    k: int,
    *,
    key: Callable[[str], Hashable | None] | None = None,
    equivalent: Callable[[str, str], bool] | None = None,
    seed: int | Sequence[int] = 0,
    n_resamples: int = 1000,
) -> float:
    """Expected correctness of a majority vote over k of the n samples.

    - Grouping: answers are clustered once over all n samples by `cluster_answers` (`key` or
      `equivalent`), so e.g. `1/2` and `0.5` vote together when the key maps both alike.
    - None answers (nothing extracted) never vote; if no sample in the subset has an answer the
      vote is incorrect.
    - Ties: among clusters with the most votes, the one whose first member comes earliest in
      sample order wins. The vote is correct iff that first member (within the subset) is.
      Subsets are index sets, so the rule does not depend on the order they are drawn in.
    - Expectation over subsets: exact enumeration when C(n, k) <= n_resamples (so always for
      k = n, and for k = 1 when n <= n_resamples), else the mean over n_resamples uniform
      random k-subsets drawn with `numpy.random.default_rng(seed)`, so a fixed seed gives a
      fixed result.
    """
    ok = _as_bools(correct, "maj_at_k correct")
    if len(answers) != ok.size:
        raise ValueError(f"maj_at_k: {len(answers)} answers but {ok.size} correctness flags")
    _check_nck(int(ok.size), int(ok.sum()), k, "maj_at_k")
    if n_resamples < 1:
        raise ValueError(f"maj_at_k: n_resamples must be >= 1, got {n_resamples}")
    labels = cluster_answers(answers, key=key, equivalent=equivalent)
    return float(_vote(labels, ok, _subsets(ok.size, k, n_resamples, seed)).mean())


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """Percentile bootstrap over problems: (mean, lo, hi) with a (1 - alpha) interval.

    Resamples the per-problem values with replacement n_boot times (seeded, vectorised in
    blocks) and takes the alpha/2 and 1 - alpha/2 quantiles of the resampled means. The point
    estimate is the plain mean of `values`, not the bootstrap mean.
    """
    v = np.asarray(values, dtype=float)  # (P,)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"bootstrap_ci: need a non-empty 1-d list of values, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"bootstrap_ci: value {int(np.argmin(np.isfinite(v)))} is not finite")
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"bootstrap_ci: need n_boot >= 1 and 0 < alpha < 1, got {n_boot}, {alpha}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)  # (n_boot,)
    for start in range(0, n_boot, _BOOT_CHUNK):
        rows = min(_BOOT_CHUNK, n_boot - start)
        idx = rng.integers(0, v.size, size=(rows, v.size))  # (rows, P)
        means[start : start + rows] = v[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(v.mean()), float(lo), float(hi)
