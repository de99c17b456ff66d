"""Policy-gradient losses: clipped surrogate, KL to the reference, loss aggregation.

``policy_loss``: PPO clipped surrogate per token with separate low/high ranges (DAPO's
clip-higher), optional dual clip (Ye et al. 2020) and a token- or sequence-level (GSPO) ratio; it
returns (B,T) and never reduces. ``kl_penalty``: Schulman's k1/k2/k3 per token. ``AGGREGATIONS``:
(B,T) -> scalar with weights fixed by the FULL mini-batch (``LossNorm``), so micro-batch losses
sum exactly to the mini-batch loss. ``total_loss``: policy + kl_coef * KL - entropy_coef *
entropy under one aggregation, with additive stats. ``truncation_mask``: zero "length" rows.
Departures: GSPO is the GSPO-token form (sequence value, per-token gradient; equal to GSPO's
gradient under ``seq_mean_token_mean``); KL is a loss term, never a per-token reward (as in GRPO,
not PPO-RLHF). Data-parallel ranks add their ``LossNorm`` counts.
Not here: log-probs or entropy (logprobs.py), the value loss (value.py), backward or optimiser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def check_bt(where: str, mask: Tensor, **tensors: Tensor | None) -> None:
    """Raise a clear error unless mask is (B,T) float and every given tensor has its shape."""
    if not isinstance(mask, Tensor) or mask.dim() != 2 or not mask.is_floating_point():
        got = (
            f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, Tensor) else type(mask).__name__
        )
        raise ValueError(f"{where}: mask must be a float (B, T) tensor, got {got}")
    for name, t in tensors.items():
        if t is not None and t.shape != mask.shape:
            raise ValueError(
                f"{where}: {name} has shape {tuple(t.shape)}, mask has {tuple(mask.shape)}"
            )


# ----------------------------------------------------------------------------- KL estimators


def _kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return logp - ref_logp  # (B, T)


def _kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    return 0.5 * (logp - ref_logp) ** 2  # (B, T)


def _kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    d = (ref_logp - logp).clamp(-20.0, 20.0)  # (B, T) log(ref / pi)
    return torch.exp(d) - d - 1.0  # (B, T) >= 0


KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "k1": _kl_k1,
    "k2": _kl_k2,
    "k3": _kl_k3,
}


def kl_penalty(logp: Tensor, ref_logp: Tensor, kind: str = "k3") -> Tensor:
    """Per-token estimate of KL(pi || ref) from tokens sampled by pi. (B,T), (B,T) -> (B,T).

    As loss gradients on samples from pi: k2's is that of KL(pi || ref); k1's is 0 in
    expectation; k3's is that of the forward KL(ref || pi). k3's log-ratio is clamped to
    [-20, 20] against overflow (no gradient past the clamp).
    """
    if kind not in KL_ESTIMATORS:
        raise KeyError(f"kl_penalty: unknown estimator {kind!r}; known: {sorted(KL_ESTIMATORS)}")
    if logp.shape != ref_logp.shape:
        raise ValueError(
            f"kl_penalty: logp {tuple(logp.shape)} and ref_logp {tuple(ref_logp.shape)} differ"
        )
    return KL_ESTIMATORS[kind](logp, ref_logp)


# ----------------------------------------------------------------------------- policy loss


@dataclass(frozen=True)
class PolicyTokenStats:
    """Per-token (B,T) tensors, detached, 0 on masked positions; ``total_loss`` reduces them."""

    ratio: Tensor  # importance ratio used by the surrogate (s_i on every token when sequence-level)
    clipped_low: Tensor  # 1 where A < 0 and ratio < 1 - clip_low (gradient zeroed by the clip)
    clipped_high: Tensor  # 1 where A > 0 and ratio > 1 + clip_high
    dual_clipped: Tensor  # 1 where A < 0 and ratio > dual_clip (loss capped)
    approx_kl: Tensor  # k3 estimate of KL(old || new): (ratio_tok - 1) - log ratio_tok


def _seq_ratio(log_ratio: Tensor, logp: Tensor, mask: Tensor) -> Tensor:
    """GSPO-token ratio: value s_i = exp(mean_t log_ratio), gradient s_i * grad logp_t. (B,T).

    Every aggregation weighs the tokens of a row equally, so the row's gradient is
    s_i * w * sum_t grad logp_t: under ``seq_mean_token_mean`` exactly the gradient of GSPO's
    sequence objective (1/len_i absorbs the mean in s_i). Clipping uses s_i.
    """
    n = mask.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1)
    s = torch.exp((log_ratio * mask).sum(dim=1, keepdim=True) / n).detach()  # (B, 1)
    return s * torch.exp(logp - logp.detach()) * mask + (1.0 - mask)  # (B, T), 1 on padding


RATIO_LEVELS = ("token", "sequence")


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    ratio_level: str = "token",
) -> tuple[Tensor, PolicyTokenStats]:
    """Clipped surrogate loss per token: max(-A r, -A clip(r, 1-lo, 1+hi)), dual-capped for A<0.

    adv is (B,) per sequence or (B,T) per token. Returns (loss_tok (B,T), 0 on masked positions,
    PolicyTokenStats).
    """
    check_bt("policy_loss", mask, logp=logp, old_logp=old_logp)
    if ratio_level not in RATIO_LEVELS:
        raise ValueError(
            f"policy_loss: ratio_level must be one of {RATIO_LEVELS}, got {ratio_level!r}"
        )
    if clip_low < 0 or clip_high < 0 or clip_low >= 1:
        raise ValueError(
            f"policy_loss: need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}"
        )
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"policy_loss: dual_clip must be > 1 (a ratio cap), got {dual_clip}")
    if adv.dim() == 1 and adv.shape[0] == mask.shape[0]:
        adv = adv[:, None]  # (B, 1)
    elif adv.shape != mask.shape:
        raise ValueError(
            f"policy_loss: adv must be (B,) or (B, T) with mask {tuple(mask.shape)}, "
            f"got {tuple(adv.shape)}"
        )
    adv = adv.detach()
    valid = mask > 0  # (B, T)
    log_ratio = torch.where(valid, logp - old_logp, 0.0)  # (B, T) 0 on padding: no overflow, no NaN
    if ratio_level == "token":
        ratio = torch.exp(log_ratio)  # (B, T)
    else:
        ratio = _seq_ratio(log_ratio, torch.where(valid, logp, 0.0), mask)  # (B, T)
    pg_unclipped = -adv * ratio  # (B, T)
    pg_clipped = -adv * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)  # (B, T)
    loss = torch.maximum(pg_unclipped, pg_clipped)  # (B, T)
    r = ratio.detach()
    dual = torch.zeros_like(r, dtype=torch.bool)
    if dual_clip is not None:
        dual = (adv < 0) & (r > dual_clip)  # (B, T)
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual_clip), loss)
    loss = torch.where(valid, loss, 0.0)  # (B, T)
    f = mask.to(r.dtype)
    rt = torch.exp(log_ratio.detach())  # (B, T) token ratio, for the old->new KL estimate
    stats = PolicyTokenStats(
        ratio=r * f,
        clipped_low=((adv < 0) & (r < 1.0 - clip_low)).to(r.dtype) * f,
        clipped_high=((adv > 0) & (r > 1.0 + clip_high)).to(r.dtype) * f,
        dual_clipped=dual.to(r.dtype) * f,
        approx_kl=((rt - 1.0) - log_ratio.detach()) * f,
    )
    return loss, stats


# ----------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class LossNorm:
    """Counts of the FULL mini-batch, computed once before the micro-batch loop.

    n_tokens: valid tokens; n_seqs: rows with at least one valid token (masked-out rows, e.g.
    truncated, do not dilute sequence means); max_len: Dr. GRPO's constant L (the configured max
    completion length), None if unused. The counts are plain sums, so they add up across
    micro-batches.
    """

    n_tokens: float
    n_seqs: float
    max_len: int | None = None

    def __add__(self, other: LossNorm) -> LossNorm:
        if self.max_len != other.max_len:
            raise ValueError(
                f"LossNorm: cannot add norms with max_len {self.max_len} and {other.max_len}"
            )
        return LossNorm(self.n_tokens + other.n_tokens, self.n_seqs + other.n_seqs, self.max_len)


def loss_norm(mask_full: Tensor, max_len: int | None = None) -> LossNorm:
    """LossNorm of a full mini-batch mask (B,T); checks that no row is longer than max_len."""
    check_bt("loss_norm", mask_full)
    lengths = mask_full.sum(dim=1)  # (B,)
    if max_len is not None:
        if max_len < 1:
            raise ValueError(f"loss_norm: max_len must be >= 1, got {max_len}")
        if lengths.numel() and lengths.max().item() > max_len:
            row = int(lengths.argmax())
            raise ValueError(
                f"loss_norm: row {row} has {int(lengths[row])} valid tokens, "
                f"more than max_len={max_len}"
            )
    return LossNorm(float(lengths.sum().item()), float((lengths > 0).sum().item()), max_len)


def _w_token_mean(mask: Tensor, norm: LossNorm) -> Tensor:
    return mask / max(norm.n_tokens, 1.0)  # (B, T)


def _w_seq_mean_token_mean(mask: Tensor, norm: LossNorm) -> Tensor:
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1) row-local: micro-batch safe
    return mask / lengths / max(norm.n_seqs, 1.0)  # (B, T)


def _w_seq_mean_token_sum_norm(mask: Tensor, norm: LossNorm) -> Tensor:
    if norm.max_len is None:
        raise ValueError(
            "seq_mean_token_sum_norm needs LossNorm.max_len (the max completion length L)"
        )
    return mask / (max(norm.n_seqs, 1.0) * norm.max_len)  # (B, T)


@dataclass(frozen=True)
class Aggregation:
    """A loss aggregation mode: per-token weights from the micro-batch mask and the full norm."""

    name: str
    token_weights: Callable[[Tensor, LossNorm], Tensor]  # (mask (B,T), norm) -> (B,T)

    def normalizer(self, mask_full: Tensor, max_len: int | None = None) -> LossNorm:
        norm = loss_norm(mask_full, max_len)
        self.token_weights(mask_full[:0], norm)  # fail now, not mid-loop, if the mode needs max_len
        return norm

    def aggregate(self, loss_tok: Tensor, mask: Tensor, norm: LossNorm) -> Tensor:
        """Scalar share of this micro-batch; shares over micro-batches sum to the full loss."""
        check_bt(f"aggregate[{self.name}]", mask, loss_tok=loss_tok)
        w = self.token_weights(mask, norm).to(loss_tok.dtype)  # (B, T)
        return torch.where(mask > 0, loss_tok * w, 0.0).sum()


AGGREGATIONS: dict[str, Aggregation] = {
    "token_mean": Aggregation("token_mean", _w_token_mean),  # DAPO
    "seq_mean_token_mean": Aggregation("seq_mean_token_mean", _w_seq_mean_token_mean),  # GRPO
    "seq_mean_token_sum_norm": Aggregation(
        "seq_mean_token_sum_norm", _w_seq_mean_token_sum_norm
    ),  # Dr. GRPO
}


def get_aggregation(agg: str | Aggregation) -> Aggregation:
    """An Aggregation by name (or passed through), with an error listing the known modes."""
    if isinstance(agg, Aggregation):
        return agg
    if agg not in AGGREGATIONS:
        raise KeyError(f"unknown loss aggregation {agg!r}; known: {sorted(AGGREGATIONS)}")
    return AGGREGATIONS[agg]


def token_mean_share(x: Tensor, mask: Tensor, norm: LossNorm) -> Tensor:
    """This micro-batch's share of the mini-batch token mean of x (for additive logging), 0-dim."""
    return torch.where(mask > 0, x.detach(), 0.0).sum() / max(norm.n_tokens, 1.0)


def to_floats(stats: dict[str, Tensor]) -> dict[str, float]:
    """0-dim tensors to floats with one device sync for the whole dict."""
    values = torch.stack([v.detach().to(torch.float64) for v in stats.values()]).tolist()
    return dict(zip(stats, values))


# ----------------------------------------------------------------------------- total loss


@dataclass(frozen=True)
class LossSettings:
    """Everything that shapes the loss of one update, frozen (built once from the algo config)."""

    aggregation: str = "token_mean"
    clip_low: float = 0.2
    clip_high: float = 0.2
    dual_clip: float | None = None
    ratio_level: str = "token"
    kl_coef: float = 0.0
    kl_kind: str = "k3"
    entropy_coef: float = 0.0

    @classmethod
    def from_algo(cls, algo) -> LossSettings:
        return cls(**{f: getattr(algo, f) for f in cls.__dataclass_fields__})


def total_loss(
    logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    mask: Tensor,
    norm: LossNorm,
    settings: LossSettings = LossSettings(),
    *,
    ref_logp: Tensor | None = None,
    entropy: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """`loss_terms` with its stats as floats (one device sync)."""
    loss, stats = loss_terms(
        logp, old_logp, adv, mask, norm, settings, ref_logp=ref_logp, entropy=entropy
    )
    return loss, to_floats(stats)


def loss_terms(
    logp: Tensor,
    old_logp: Tensor,
    adv: Tensor,
    mask: Tensor,
    norm: LossNorm,
    settings: LossSettings = LossSettings(),
    *,
    ref_logp: Tensor | None = None,
    entropy: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Scalar loss of one micro-batch (its share of the mini-batch loss) and additive stats
    (0-dim tensors on the inputs' device; nothing leaves the device).

    loss = agg(policy) + kl_coef * agg(kl(logp, ref_logp)) - entropy_coef * agg(entropy).
    KL is logged whenever ref_logp is given; entropy whenever entropy (B,T) is given.
    """
    k = settings
    agg = get_aggregation(k.aggregation)
    check_bt("total_loss", mask, ref_logp=ref_logp, entropy=entropy)
    if k.kl_coef != 0.0 and ref_logp is None:
        raise ValueError(f"total_loss: kl_coef={k.kl_coef} needs ref_logp")
    if k.entropy_coef != 0.0 and entropy is None:
        raise ValueError(f"total_loss: entropy_coef={k.entropy_coef} needs entropy")
    pg_tok, ts = policy_loss(
        logp,
        old_logp,
        adv,
        mask,
        clip_low=k.clip_low,
        clip_high=k.clip_high,
        dual_clip=k.dual_clip,
        ratio_level=k.ratio_level,
    )
    loss = agg.aggregate(pg_tok, mask, norm)
    stats: dict[str, Tensor] = {"loss/policy": loss}
    if ref_logp is not None:
        valid = mask > 0  # (B, T) padding compares 0 with 0: no overflow, no NaN gradient
        kl_tok = kl_penalty(
            torch.where(valid, logp, 0.0), torch.where(valid, ref_logp, 0.0), k.kl_kind
        )  # (B, T)
        kl = agg.aggregate(kl_tok, mask, norm)
        if k.kl_coef != 0.0:
            loss = loss + k.kl_coef * kl
        stats["loss/kl"] = kl
        stats["policy/kl"] = token_mean_share(kl_tok, mask, norm)
    if entropy is not None:
        ent = agg.aggregate(entropy, mask, norm)
        if k.entropy_coef != 0.0:
            loss = loss - k.entropy_coef * ent
        stats["loss/entropy"] = ent
        stats["policy/entropy"] = token_mean_share(entropy, mask, norm)
    stats["loss/total"] = loss
    for key, x in (
        ("policy/clipfrac_low", ts.clipped_low),
        ("policy/clipfrac_high", ts.clipped_high),
        ("policy/dualclip_frac", ts.dual_clipped),
        ("policy/approx_kl", ts.approx_kl),
        ("policy/ratio_mean", ts.ratio),
    ):
        stats[key] = token_mean_share(x, mask, norm)
    return loss, stats


def truncation_mask(
    finish_reasons: Sequence[str], mask: Tensor, mask_truncated: bool = True
) -> Tensor:
    """Zero the rows of mask (B,T) whose finish reason is "length" (if mask_truncated)."""
    check_bt("truncation_mask", mask)
    if len(finish_reasons) != mask.shape[0]:
        raise ValueError(
            f"truncation_mask: {len(finish_reasons)} finish reasons for {mask.shape[0]} rows"
        )
    if not mask_truncated:
        return mask
    keep = torch.tensor(
        [fr != "length" for fr in finish_reasons], dtype=mask.dtype, device=mask.device
    )  # (B,)
    return mask * keep[:, None]  # (B, T)
