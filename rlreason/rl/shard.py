"""Data-parallel RL steps: what each rank holds and what is reduced so N ranks compute one step.

Every rank draws the same global prompts of a step and keeps a contiguous slice (`prompt_span`):
rank r holds prompts [r*P/N, (r+1)*P/N) with their G samples, so group advantages stay local.
`Rows` records which GLOBAL batch rows (the rows one process would hold, in its order) a rank's
local rows are; with that:
- dynamic sampling (`keep_groups`) decides which groups survive from every rank's flat-group flags,
  round by round in global group order, and caps the global list at P, as one process does;
- advantages (`advantages`) are computed on the gathered global reward vector for the outcome
  estimators (batch-whitened ones included), per row for the `per_row` ones (GAE from the row's
  values, on-policy distillation from the row's teacher and student log-probs);
- the update (`Shard`, passed to rl/update.py) forms the global mini-batches from one global
  permutation, sums the LossNorm counts (so each rank's loss is its share of the global loss), sums
  the gradients (then clipping and AdamW see the single-process gradient; FSDP2's sharded ones
  are summed by FSDP itself, rl/fsdp.py) and sums the additive stats;
- metrics are reduced to the global values: rollout shapes from the gathered per-row values,
  scorer metrics by name (means weighted by rows, stds pooled, counts summed, min/max as min/max).
With one process every function here returns what the single-process code computed before.
Not here: the collectives themselves (rlreason/distributed.py), the loop (trainer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlreason.rl.advantages import advantage_metrics
from rlreason.rl.fsdp import has_dtensors
from rlreason.rl.losses import LossNorm
from rlreason.rl.timing import rollout_metrics


def prompt_span(dist, n_prompts: int) -> tuple[int, int]:
    """This rank's prompts [lo, hi) of a step's `n_prompts` (divisible by the world size)."""
    per = n_prompts // dist.world
    return dist.rank * per, (dist.rank + 1) * per


@dataclass(frozen=True)
class Rows:
    """Which rows of the global batch (`total` rows) this rank's local rows are, in local order."""

    global_rows: list[int]
    total: int

    @classmethod
    def span(cls, lo: int, hi: int, total: int) -> Rows:
        return cls(list(range(lo, hi)), total)

    def local(self, global_rows: list[int]) -> list[int]:
        """The local indices of those `global_rows` this rank holds, in the given order."""
        where = {g: i for i, g in enumerate(self.global_rows)}
        return [where[g] for g in global_rows if g in where]


def keep_groups(dist, flat: list[bool], lo: int, kept: list[tuple[int, int]], rnd: int):
    """Dynamic sampling's choice for one round. `flat`: this rank's per-group flags (rewards all
    equal); `kept`: the global (round, group) list so far, extended in place in global group
    order. Returns (the round's global flags, local group indices kept this round)."""
    flags = [f for part in dist.all_gather(list(flat)) for f in part]  # (P,) global group order
    kept.extend((rnd, g) for g, f in enumerate(flags) if not f)
    return flags, [g - lo for g, f in enumerate(flat, start=lo) if not f]


def kept_rows(kept: list[tuple[int, int]], lo: int, hi: int, G: int, cap: int) -> Rows:
    """Global rows of this rank's groups among the first `cap` kept groups (in kept order)."""
    rows = [j * G + i for j, (_, g) in enumerate(kept[:cap]) if lo <= g < hi for i in range(G)]
    return Rows(rows, cap * G)


def advantages(estimator, batch, values, algo, dist, rows: Rows, token_logp=None):
    """(adv, returns, advantage metrics) of the local rows, equal to one process's rows.
    `token_logp`: the local rows' {"teacher", "student"} (B, T) log-probs, or None."""
    if dist.world == 1:
        adv, returns = estimator(batch.rewards, batch.mask, values, algo, token_logp)
        return adv, returns, advantage_metrics(adv, batch.mask)
    if estimator.per_row:  # GAE, distillation: per row, from the row's own tensors
        adv, returns = estimator(batch.rewards, batch.mask, values, algo, token_logp)
        return adv, returns, _reduced_adv_metrics(dist, adv[batch.mask > 0])
    parts = dist.all_gather((rows.global_rows, batch.rewards.tolist()))
    rewards = torch.zeros(rows.total, dtype=batch.rewards.dtype)  # (B_global,)
    for idx, r in parts:
        rewards[idx] = torch.tensor(r, dtype=batch.rewards.dtype)
    ones = torch.ones(rows.total, 1)  # outcome estimators read only the rewards
    adv_g, returns = estimator(rewards, ones, None, algo)  # (B_global,)
    adv = adv_g[rows.global_rows].to(batch.rewards.device)  # (B_local,)
    return adv, returns, advantage_metrics(adv_g, ones)


def _reduced_adv_metrics(dist, valid: torch.Tensor) -> dict[str, float]:
    """`advantage_metrics` of the valid tokens of every rank, from summed moments (float64)."""
    v = valid.double()  # (n,)
    n, s, sq, ab = dist.sum_floats(
        [v.numel(), float(v.sum()), float((v * v).sum()), float(v.abs().sum())]
    )
    mean = s / max(n, 1.0)
    var = (sq - n * mean * mean) / (n - 1) if n > 1 else 0.0
    return {"adv/mean": mean, "adv/std": max(var, 0.0) ** 0.5, "adv/abs_mean": ab / max(n, 1.0)}


@dataclass(frozen=True)
class Shard:
    """What rl/update.py needs to run one rank's share of the global update."""

    dist: object  # rlreason.distributed.Dist
    rows: Rows

    @property
    def total_rows(self) -> int:
        return self.rows.total

    def local_rows(self, global_rows: list[int]) -> list[int]:
        return self.rows.local(global_rows)

    def reduce_norm(self, norm: LossNorm) -> LossNorm:
        n_tokens, n_seqs = self.dist.sum_floats([norm.n_tokens, norm.n_seqs])
        return LossNorm(n_tokens, n_seqs, norm.max_len)

    def reduce_grads(self, params) -> None:
        """Sum the gradients over ranks; sharded (FSDP2) ones FSDP already reduce-scattered."""
        if has_dtensors(params):
            return
        self.dist.all_reduce_grads(params)

    def reduce_stats(self, stats: dict[str, float]) -> dict[str, float]:
        """Sum of additive stats over ranks (a rank without rows in a mini-batch has none)."""
        out: dict[str, float] = {}
        for part in self.dist.all_gather(stats):
            for k, v in part.items():
                out[k] = out.get(k, 0.0) + v
        return out


def token_weighted(dist, metrics: dict[str, float], n_tokens: float) -> dict[str, float]:
    """Token means over each rank's rows (here: the log-prob mismatch) as global token means."""
    if dist.world == 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    sums = dist.sum_floats([n_tokens] + [metrics[k] * max(n_tokens, 1.0) for k in keys])
    return {k: s / max(sums[0], 1.0) for k, s in zip(keys, sums[1:])}


def rollout_step_metrics(dist, lengths, finish, correct, scorer_metrics, gen_s) -> dict:
    """Rollout shapes, the scorer's metrics and throughput of the global batch of one round."""
    if dist.world == 1:
        out = {**rollout_metrics(lengths, finish, correct), **scorer_metrics}
        out["perf/tokens_per_s"] = sum(lengths) / max(gen_s, 1e-9)
        return out
    parts = dist.all_gather((lengths, finish, correct, scorer_metrics, gen_s))
    glob = [[x for p in parts for x in p[j]] for j in range(3)]
    out = {
        **rollout_metrics(*glob),
        **merge_metrics([p[3] for p in parts], [len(p[0]) for p in parts]),
    }
    out["perf/tokens_per_s"] = sum(glob[0]) / max(max(p[4] for p in parts), 1e-9)
    return out


def merge_metrics(dicts: list[dict[str, float]], counts: list[int]) -> dict[str, float]:
    """Per-rank metric dicts over `counts` rows each, combined by name: `*/errors`, `*/timeouts`
    summed; `*min`/`*max` as min/max; `X/std` pooled (population) with `X/mean`; everything else
    a row-weighted mean (exact for means over all rows; a mean over a subset of rows, such as
    `rollout/self_verify_rate`, is approximated by row weights)."""
    N = max(sum(counts), 1)
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    out: dict[str, float] = {}
    for k in keys:
        vals = [(d[k], n) for d, n in zip(dicts, counts) if k in d]
        if k.endswith(("/errors", "/timeouts")):
            out[k] = float(sum(v for v, _ in vals))
        elif k.endswith("min"):
            out[k] = min(v for v, _ in vals)
        elif k.endswith("max"):
            out[k] = max(v for v, _ in vals)
        else:
            out[k] = sum(v * n for v, n in vals) / N
    for k in keys:
        mean_key = k[: -len("std")] + "mean"
        if k.endswith("/std") and all(mean_key in d and k in d for d in dicts):
            second = sum((d[k] ** 2 + d[mean_key] ** 2) * n for d, n in zip(dicts, counts)) / N
            out[k] = max(second - out[mean_key] ** 2, 0.0) ** 0.5
    return out
