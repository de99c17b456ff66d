"""Advantage estimators: turn rewards (and, for PPO, values) into advantages.

Every registry entry (``ADVANTAGES``) has one signature, ``(rewards (B,), mask (B,T), values,
algo, token_logp=None) -> (adv, returns)``; rows are prompt-major (prompt 0's G samples first).
``token_logp`` is None except for estimators with ``needs_teacher``: then a dict of detached (B,T)
log-probs of the sampled tokens, ``{"teacher": ..., "student": ...}``; the others ignore it.
Outcome estimators are plain ``fn(rewards, G) -> adv (B,)`` wrapped by ``outcome``: ``grpo``
(group mean and the unbiased std, as TRL), ``dr_grpo`` (mean only), ``rloo`` (leave-one-out),
``reinforce_pp_baseline`` (REINFORCE++ with a group baseline: centre per group, divide by the
batch std) and ``reinforce_pp`` (plain REINFORCE++: whiten over the batch). ``gae`` puts the
outcome reward on the last valid token and runs GAE over the valid tokens (terminal after the
last; masked positions get 0). ``onpolicy_distill`` (rl/distill.py): per-token teacher minus
student log-prob, pure distillation (the reward is logged, not used).
Choices: a group whose rewards are all equal gets exactly 0; group estimators need G >= 2.
Departure (REINFORCE++): whitening is over sequences, not length-weighted tokens as in OpenRLHF,
and KL is a loss term (losses.py), not a per-token reward.
Not here: value models, advantage whitening for PPO, the teacher pass (update.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from rlreason.rl.distill import reverse_kl_advantage
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


def reinforce_pp_baseline(rewards: Tensor, G: int, eps: float = 1e-6) -> Tensor:
    """REINFORCE++ with a group baseline: centre by group mean, then whiten over the batch."""
    centred, _ = _centred(rewards, G, "reinforce_pp_baseline")  # (P, G)
    c = centred.reshape(-1)  # (B,)
    if bool((c == 0).all()):
        return c  # every group is flat: no signal, and no 0 / 0
    return c / (c.std() + eps)  # (B,) the batch mean of c is 0: each group is centred


def reinforce_pp(rewards: Tensor, G: int = 1, eps: float = 1e-6) -> Tensor:
    """Plain REINFORCE++: rewards whitened over the whole batch, no group baseline. G is unused
    (any group size, 1 included). A batch of equal rewards gives exact zeros."""
    if not isinstance(rewards, Tensor) or rewards.dim() != 1 or rewards.numel() == 0:
        raise ValueError("reinforce_pp: rewards must be a non-empty 1-D tensor (B,)")
    if not torch.isfinite(rewards).all():
        raise ValueError("reinforce_pp: rewards contain non-finite values")
    if bool((rewards == rewards[0]).all()):
        return torch.zeros_like(rewards)  # (B,) no spread, no signal
    c = rewards - rewards.mean()  # (B,)
    return c / (c.std() + eps)  # (B,)


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


def advantage_metrics(adv: Tensor, mask: Tensor) -> dict[str, float]:
    """`adv/mean`, `adv/std`, `adv/abs_mean` over rows (B,) or valid tokens (B, T)."""
    valid = adv[mask > 0] if adv.dim() == 2 else adv  # (N,)
    return {
        "adv/mean": float(valid.mean()),
        "adv/std": float(valid.std()) if valid.numel() > 1 else 0.0,
        "adv/abs_mean": float(valid.abs().mean()),
    }


# ----------------------------------------------------------------------------- registry

Estimate = tuple[Tensor, "Tensor | None"]  # (adv (B,) or (B,T), returns (B,T) or None)
TokenLogp = dict[str, Tensor]  # {"teacher": (B,T), "student": (B,T)}, detached


@dataclass(frozen=True)
class AdvantageEstimator:
    """A registry entry with the one signature every estimator has:
    ``estimate(rewards (B,), mask (B,T), values (B,T) | None, algo, token_logp=None) -> (adv,
    returns | None)``, where ``algo`` carries ``group_size``, ``gamma`` and ``lam``.
    ``needs_value``: the trainer builds a value head and passes its (old) values;
    ``needs_teacher``: the trainer runs a frozen teacher and passes ``token_logp``;
    ``grouped``: rows come in groups of G >= 2."""

    name: str
    estimate: Callable[..., Estimate]
    needs_value: bool = False
    grouped: bool = True
    needs_teacher: bool = False

    @property
    def per_row(self) -> bool:
        """A row's advantages depend on that row alone (its values or token log-probs), so
        data-parallel ranks compute their own rows; else they need the global rewards."""
        return self.needs_value or self.needs_teacher

    def __call__(
        self,
        rewards: Tensor,
        mask: Tensor,
        values: Tensor | None,
        algo,
        token_logp: TokenLogp | None = None,
    ) -> Estimate:
        return self.estimate(rewards, mask, values, algo, token_logp)


def outcome(name: str, fn: Callable[[Tensor, int], Tensor], grouped: bool = True):
    """Registry entry for an outcome estimator ``fn(rewards (B,), G) -> adv (B,)``."""
    return AdvantageEstimator(
        name,
        lambda r, mask, values, algo, token_logp=None: (fn(r, algo.group_size), None),
        grouped=grouped,
    )


def _gae_estimate(rewards, mask, values, algo, token_logp=None) -> Estimate:
    if values is None:
        raise ValueError("gae needs the value head's old values (B, T)")
    return gae(place_outcome_rewards(rewards, mask), values, mask, algo.gamma, algo.lam)


def _distill_estimate(rewards, mask, values, algo, token_logp=None) -> Estimate:
    """Reverse-KL per-token advantages; `rewards` are not used (pure distillation)."""
    if not token_logp or not {"teacher", "student"} <= token_logp.keys():
        raise ValueError(
            "onpolicy_distill needs token_logp={'teacher': (B, T), 'student': (B, T)}: "
            "pass a teacher to the Trainer"
        )
    return reverse_kl_advantage(token_logp["teacher"], token_logp["student"], mask), None


ADVANTAGES: dict[str, AdvantageEstimator] = {
    e.name: e
    for e in (
        outcome("grpo", grpo),
        outcome("dr_grpo", dr_grpo),
        outcome("rloo", rloo),
        outcome("reinforce_pp_baseline", reinforce_pp_baseline),
        outcome("reinforce_pp", reinforce_pp, grouped=False),
        AdvantageEstimator("gae", _gae_estimate, needs_value=True, grouped=False),
        AdvantageEstimator(
            "onpolicy_distill", _distill_estimate, grouped=False, needs_teacher=True
        ),
    )
}


def get_estimator(name: str) -> AdvantageEstimator:
    """Look an estimator up by name, with an error that lists the known ones."""
    if name not in ADVANTAGES:
        raise KeyError(f"unknown advantage estimator {name!r}; known: {sorted(ADVANTAGES)}")
    return ADVANTAGES[name]
