"""Value head on the policy trunk and the clipped value loss (PPO with ``gae`` only).

What it does
- ``ValueHead``: one ``Linear(d_model, 1)`` applied to the trunk's hidden states (B,T,C) -> (B,T),
  initialised small (weights N(0, init_std), bias 0) so early values sit near 0 and the first
  advantages are close to the discounted rewards.
- ``value_loss``: PPO2-style clipped squared error,
  ``0.5 * max((V - R)², (V_old + clip(V - V_old, -c, c) - R)²)`` per token, aggregated by one of
  ``losses.AGGREGATIONS`` with the mini-batch ``LossNorm``, so it accumulates over micro-batches
  exactly like the policy loss; the stats dict is additive over micro-batches too.

What it deliberately does not do: no separate critic model, no value-target normalisation, no
choice of which trunk layer feeds the head (the caller passes the hidden states).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rlreason.rl.losses import (
    Aggregation,
    LossNorm,
    check_bt,
    get_aggregation,
    to_floats,
    token_mean_share,
)


class ValueHead(nn.Module):
    """Scalar value per position from trunk hidden states: (B,T,C) -> (B,T), at least float32."""

    def __init__(self, d_model: int, init_std: float = 1e-3) -> None:
        super().__init__()
        if d_model < 1:
            raise ValueError(f"ValueHead: d_model must be >= 1, got {d_model}")
        self.proj = nn.Linear(d_model, 1)
        nn.init.normal_(self.proj.weight, std=init_std)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        if hidden.dim() != 3 or hidden.shape[-1] != self.proj.in_features:
            raise ValueError(
                f"ValueHead: expected hidden (B, T, {self.proj.in_features}), got {tuple(hidden.shape)}"
            )
        v = self.proj(hidden.to(self.proj.weight.dtype)).squeeze(-1)  # (B, T)
        return v.to(torch.promote_types(v.dtype, torch.float32))  # bf16/fp16 -> fp32, fp64 stays


def value_loss_tok(
    values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor, clip: float | None = 0.2
) -> tuple[Tensor, Tensor]:
    """Per-token clipped value loss (B,T) and the (B,T) indicator of tokens where the clip bound."""
    check_bt("value_loss", mask, values=values, old_values=old_values, returns=returns)
    if clip is not None and clip <= 0:
        raise ValueError(f"value_loss: clip must be > 0 or None, got {clip}")
    valid = mask > 0  # (B, T)
    old, ret = old_values.detach(), returns.detach()
    err = (values - ret) ** 2  # (B, T)
    if clip is None:
        loss, bound = err, torch.zeros_like(err)
    else:
        v_clip = old + (values - old).clamp(-clip, clip)  # (B, T)
        err_clip = (v_clip - ret) ** 2  # (B, T)
        loss = torch.maximum(err, err_clip)  # (B, T)
        bound = (err_clip > err).to(err.dtype).detach()  # (B, T)
    return torch.where(valid, 0.5 * loss, 0.0), bound * mask


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    norm: LossNorm,
    *,
    clip: float | None = 0.2,
    aggregation: str | Aggregation = "token_mean",
) -> tuple[Tensor, dict[str, float]]:
    """Scalar clipped value loss (this micro-batch's share) and additive stats."""
    agg = get_aggregation(aggregation)
    loss_tok, bound = value_loss_tok(values, old_values, returns, mask, clip)
    loss = agg.aggregate(loss_tok, mask, norm)
    stats = {
        "loss/value": loss,
        "value/clipfrac": token_mean_share(bound, mask, norm),
        "value/mean": token_mean_share(values, mask, norm),
        "value/returns_mean": token_mean_share(returns, mask, norm),
    }
    return loss, to_floats(stats)
