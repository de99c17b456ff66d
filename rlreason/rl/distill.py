"""On-policy distillation: a frozen teacher scores the student's own samples, token by token.

The student samples completions (the normal rollout); the teacher and the student each give the
log-prob of every sampled token, and the per-token advantage is the reverse-KL signal

    A_t = log p_teacher(x_t | x_<t) - log p_student(x_t | x_<t)        (both detached)

Fed to the clipped surrogate (rl/losses.py) at ratio 1 the loss's gradient is `-sum_t w_t A_t
grad log pi(x_t)` (w_t: the aggregation's token weight, 1/N under token_mean): the per-token
policy gradient of the reverse KL(student || teacher) with discount 0, each token credited with
its own term only (Thinking Machines' "on-policy distillation"; GKD's
on-policy reverse-KL form with sampled tokens instead of the full vocabulary sum).

Which log-probs: `student_logp` comes from a no-grad pass of the current student (before the
update, adapters on, eval mode) at the training temperature: the sampler's distribution, but
computed by the same packing and kernels as the teacher's pass, so a teacher equal to the student
gives exactly 0 (the sampler's own log-probs differ from the trainer's by rounding). The teacher
is tempered by the same `sampling.temperature` as the student (as the reference pass is); at
temperature 1, the default, it is the teacher itself.

Departures, stated: pure distillation, the outcome reward takes no part in the advantage (rewards
are still scored and logged, so accuracy curves stay comparable); no mixing knob exists. No
discounting over future tokens (Thinking Machines also use discount 0).
Not here: the teacher pass (rl/update.py `prepare`), loading the teacher (experiments/teacher.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlreason.rl.losses import check_bt


def reverse_kl_advantage(teacher_logp: Tensor, student_logp: Tensor, mask: Tensor) -> Tensor:
    """A_t = teacher_logp - student_logp at valid tokens, exactly 0 elsewhere. (B,T) x3 -> (B,T).

    No gradient flows (both inputs are detached); a non-finite log-prob at a valid token is an
    error (it would poison the update), at a masked one it is ignored."""
    check_bt("reverse_kl_advantage", mask, teacher_logp=teacher_logp, student_logp=student_logp)
    valid = mask > 0  # (B, T)
    adv = torch.where(valid, teacher_logp.detach().float() - student_logp.detach().float(), 0.0)
    if not torch.isfinite(adv).all():
        bad = torch.nonzero(~torch.isfinite(adv))[:5].tolist()
        raise ValueError(f"reverse_kl_advantage: non-finite log-probs at (row, token) {bad}")
    return adv  # (B, T)


def distill_metrics(teacher_logp: Tensor, student_logp: Tensor, mask: Tensor) -> dict[str, float]:
    """Token means over the valid tokens: `distill/reverse_kl` (student - teacher, the sampled
    per-token estimate of KL(student || teacher)), `distill/teacher_logp` and
    `distill/student_logp`."""
    check_bt("distill_metrics", mask, teacher_logp=teacher_logp, student_logp=student_logp)
    valid = mask > 0  # (B, T)
    n = max(float(valid.sum()), 1.0)
    t = torch.where(valid, teacher_logp.float(), 0.0).sum() / n
    s = torch.where(valid, student_logp.float(), 0.0).sum() / n
    return {
        "distill/reverse_kl": float(s - t),
        "distill/teacher_logp": float(t),
        "distill/student_logp": float(s),
    }
