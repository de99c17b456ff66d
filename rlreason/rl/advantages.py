"""Advantage estimators: turn rewards (and, for PPO, values) into advantages.

What it does
- Outcome estimators share one signature, ``fn(rewards (B,), G, **kw) -> adv (B,)``, where
  ``B = num_prompts * G`` and rows are prompt-major (prompt 0's G samples first):
  ``grpo`` (group mean and std), ``dr_grpo`` (group mean only), ``rloo`` (leave-one-out mean),
  ``reinforce_pp`` (group mean, then whole-batch normalisation).
- ``gae`` has its own signature, ``fn(token_rewards (B,T), values (B,T), mask (B,T), gamma, lam)
  -> (adv (B,T), returns (B,T))``; ``place_outcome_rewards`` puts a sequence reward on the last
  valid token so an outcome reward can feed it.
- ``ADVANTAGES`` maps a name to an ``AdvantageEstimator`` record (callable, with ``needs_value`` and
  ``per_token`` flags) so the trainer looks estimators up by name, never by an if-chain.
- ``group_stats`` reports which groups have zero reward spread (dynamic sampling, logging).

Choices and departures, stated once
- Standard deviation: ``grpo`` uses the *unbiased* group std (``torch.std``, correction 1), as TRL
  does, so runs compare with TRL numbers. With G=4 and rewards [1, 1, 0, 0] that is 0.577, not 0.5.
- A group whose rewards are all equal gets advantage exactly 0 in every estimator (not a tiny
  float residue from ``r - mean``), so dynamic sampling and "no signal" logging see clean zeros.
- Every group estimator needs G >= 2: with G = 1 each advantage is identically 0 (or undefined for
  the std), which would train on nothing without saying so, so it is an error instead.
- ``reinforce_pp`` is REINFORCE++ "with baseline" (Hu et al. 2025, arXiv:2501.03262): subtract the
  group mean, then normalise the centred rewards by the mean and std (unbiased) of the whole batch.
  Departure: OpenRLHF whitens the *token-level* advantages (each sequence weighted by its length);
  here the whitening is over sequences, before any broadcast to tokens, so it is length-free. Over
  sequences the batch mean of group-centred rewards is exactly 0, so only the division by the
  batch std remains (subtracting a float-noise mean would un-zero the flat groups). The
  KL-in-reward of plain REINFORCE++ is not here: KL is a loss term (see losses.py).
- ``gae`` treats the valid (mask = 1) tokens of a row as the trajectory, in order, skipping masked
  positions wherever they are (prompt padding on the left, padding on the right); the state after
  the last valid token is terminal (value 0). Masked positions get advantage and return 0.

What it deliberately does not do: no token broadcasting of outcome advantages (losses accept (B,)),
no advantage whitening for PPO (one masked mean/std in the trainer if wanted), no value model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rlreason.rl.losses import check_bt

# ----------------------------------------------------------------------------- checks and groups


def _grouped(rewards: Tensor, G: int, where: str) -> Tensor:
    """View (B,) rewards as (P, G) after checking shape, dtype and group size."""
    if not isinstance(rewards, Tensor) or rewards.dim() != 1:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
        raise ValueError(f"{where}: rewards must be a 1-D tensor (B,), got {shape}")
    if not rewards.is_floating_point():
        raise ValueError(f"{where}: rewards must be a float tensor, got {rewards.dtype}")
    if not isinstance(G, int) or G < 2:
        raise ValueError(
            f"{where}: group size G must be an int >= 2 (G=1 makes every advantage 0), got {G!r}"
        )
    B = rewards.shape[0]
    if B == 0 or B % G != 0:
        raise ValueError(f"{where}: batch size B={B} is not a positive multiple of G={G}")
    if not torch.isfinite(rewards).all():
        bad = torch.nonzero(~torch.isfinite(rewards)).flatten().tolist()
        raise ValueError(f"{where}: rewards contain non-finite values at rows {bad[:10]}")
    return rewards.view(B // G, G)  # (P, G)


def _centred(rewards: Tensor, G: int, where: str) -> tuple[Tensor, Tensor]:
    """Group-centred rewards (P, G), exact zeros in zero-spread groups, and that group mask (P,)."""
    r = _grouped(rewards, G, where)  # (P, G)
    flat = r.amax(dim=1) == r.amin(dim=1)  # (P,)
    centred = r - r.mean(dim=1, keepdim=True)  # (P, G)
    return torch.where(flat[:, None], torch.zeros_like(centred), centred), flat


@dataclass(frozen=True)
class GroupStats:
    """Per-group reward spread. ``zero_std`` (P,) bool: every reward in the group is equal;
    ``zero_std_rows`` (B,) bool: the same, repeated per row; ``zero_std_frac``: fraction of groups."""

    mean: Tensor  # (P,)
    std: Tensor  # (P,) unbiased
    zero_std: Tensor  # (P,) bool
    zero_std_rows: Tensor  # (B,) bool
    zero_std_frac: float


def group_stats(rewards: Tensor, G: int) -> GroupStats:
    """Group means, stds and the zero-spread mask (groups that carry no learning signal)."""
    r = _grouped(rewards, G, "group_stats")  # (P, G)
    flat = r.amax(dim=1) == r.amin(dim=1)  # (P,)
    return GroupStats(
        mean=r.mean(dim=1),
        std=r.std(dim=1),
        zero_std=flat,
        zero_std_rows=flat.repeat_interleave(G),
        zero_std_frac=flat.float().mean().item(),
    )


# ----------------------------------------------------------------------------- outcome estimators


def grpo(rewards: Tensor, G: int, eps: float = 1e-6) -> Tensor:
    """(r - mean_g) / (std_g + eps), std unbiased; zero-spread groups give 0. (B,) -> (B,)."""
    centred, flat = _centred(rewards, G, "grpo")  # (P, G)
    std = rewards.view(-1, G).std(dim=1, keepdim=True)  # (P, 1)
    std = torch.where(flat[:, None], 1.0, std)  # (P, 1) zero-spread groups: 0 / 1, never 0 / 0
    return (centred / (std + eps)).reshape(-1)  # (B,)


def dr_grpo(rewards: Tensor, G: int) -> Tensor:
    """Dr. GRPO: r - mean_g, no std division. (B,) -> (B,)."""
    centred, _ = _centred(rewards, G, "dr_grpo")  # (P, G)
    return centred.reshape(-1)  # (B,)


def rloo(rewards: Tensor, G: int) -> Tensor:
    """RLOO: r_i - mean of the other G-1 rewards of the group (= G/(G-1) * (r_i - mean_g))."""
    centred, _ = _centred(rewards, G, "rloo")  # (P, G)
    return (centred * (G / (G - 1))).reshape(-1)  # (B,)


def reinforce_pp(rewards: Tensor, G: int, eps: float = 1e-6) -> Tensor:
    """REINFORCE++ with baseline: centre by group mean, then whiten over the whole batch."""
    centred, _ = _centred(rewards, G, "reinforce_pp")  # (P, G)
    c = centred.reshape(-1)  # (B,)
    if bool((c == 0).all()):
        return c  # every group is flat: no signal, and no 0 / 0
    return c / (c.std() + eps)  # (B,) the batch mean of c is 0: each group is centred


# ----------------------------------------------------------------------------- GAE (PPO)


def place_outcome_rewards(rewards: Tensor, mask: Tensor) -> Tensor:
    """Put each row's scalar reward on its last valid token. (B,), (B,T) -> (B,T).

    A row with no valid token (e.g. a truncated completion masked out) gets no reward: there is no
    token to credit, and it takes no part in the loss.
    """
    if rewards.dim() != 1 or mask.dim() != 2 or rewards.shape[0] != mask.shape[0]:
        raise ValueError(
            f"place_outcome_rewards: need rewards (B,) and mask (B, T), got {tuple(rewards.shape)} and {tuple(mask.shape)}"
        )
    T = mask.shape[1]
    valid = mask > 0  # (B, T)
    last = T - 1 - valid.flip(1).float().argmax(dim=1)  # (B,) index of the last valid token
    out = torch.zeros(mask.shape, dtype=rewards.dtype, device=rewards.device)  # (B, T)
    out.scatter_(1, last[:, None], rewards[:, None])
    return out * valid.any(dim=1, keepdim=True)  # (B, T) rows with no valid token stay 0


def gae(
    token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over the valid tokens of each row.

    For valid t with next valid token t' (none: terminal, V = 0, A = 0):
      delta_t = r_t + gamma * V_t' - V_t ;  A_t = delta_t + gamma * lam * A_t' ;  R_t = A_t + V_t.
    Returns (adv (B,T), returns (B,T)), both 0 on masked positions; no gradient flows.
    """
    check_bt("gae", mask, token_rewards=token_rewards, values=values)
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gae: gamma and lam must lie in [0, 1], got gamma={gamma}, lam={lam}")
    with torch.no_grad():
        valid = mask > 0  # (B, T)
        r = torch.where(valid, token_rewards, 0.0)  # (B, T)
        v = torch.where(valid, values, 0.0)  # (B, T)
        adv = torch.zeros_like(v)  # (B, T)
        next_v = torch.zeros_like(v[:, 0])  # (B,)
        next_a = torch.zeros_like(v[:, 0])  # (B,)
        for t in range(v.shape[1] - 1, -1, -1):
            a_t = r[:, t] + gamma * next_v - v[:, t] + gamma * lam * next_a  # (B,)
            m = valid[:, t]  # (B,)
            adv[:, t] = torch.where(m, a_t, 0.0)
            next_v = torch.where(m, v[:, t], next_v)
            next_a = torch.where(m, a_t, next_a)
        returns = torch.where(valid, adv + v, 0.0)  # (B, T)
    return adv, returns


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class AdvantageEstimator:
    """A registry entry. ``needs_value``: the trainer must run a value head and call
    ``fn(token_rewards, values, mask, gamma, lam) -> (adv (B,T), returns (B,T))``; otherwise
    ``fn(rewards (B,), G, **kw) -> adv (B,)``. ``per_token``: the advantage is (B,T), not (B,)."""

    name: str
    fn: Callable[..., Tensor | tuple[Tensor, Tensor]]
    needs_value: bool
    per_token: bool

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


ADVANTAGES: dict[str, AdvantageEstimator] = {
    "grpo": AdvantageEstimator("grpo", grpo, needs_value=False, per_token=False),
    "dr_grpo": AdvantageEstimator("dr_grpo", dr_grpo, needs_value=False, per_token=False),
    "rloo": AdvantageEstimator("rloo", rloo, needs_value=False, per_token=False),
    "reinforce_pp": AdvantageEstimator(
        "reinforce_pp", reinforce_pp, needs_value=False, per_token=False
    ),
    "gae": AdvantageEstimator("gae", gae, needs_value=True, per_token=True),
}


def get_estimator(name: str) -> AdvantageEstimator:
    """Look an estimator up by name, with an error that lists the known ones."""
    if name not in ADVANTAGES:
        raise KeyError(f"unknown advantage estimator {name!r}; known: {sorted(ADVANTAGES)}")
    return ADVANTAGES[name]
