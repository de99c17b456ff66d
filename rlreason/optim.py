"""Optimisation utilities: AdamW parameter groups, warmup + cosine learning rate, gradient clipping.

- `build_adamw`: trainable parameters only; no weight decay on 1-D tensors (norm gains, biases).
- `lr_at(step, ...)`: linear warmup from `initial_lr` to `peak_lr` over `warmup_steps` steps
  (step counted from 0: lr(0) = initial_lr, lr(warmup_steps) = peak_lr), then cosine decay
  `min_lr + (peak_lr - min_lr) * 0.5 * (1 + cos(pi * progress))` with
  progress = (step - warmup_steps) / (total_steps - warmup_steps), reaching `min_lr` at
  `total_steps` and staying there after (a warmup as long as the run ends at `peak_lr`: there is
  no decay phase). The RL trainer asks for `lr_at(s)` at its step s = 1..steps, so its first step
  already moves and its last one runs at `min_lr`.
- `clip_gradients`: global-norm clipping, from step 0 or only once warmup is over (the reference
  notes clip only after warmup); always returns the pre-clip norm for logging.
- `plot_schedule`: the schedule as a PNG.

Not here: the training loop (rl/trainer.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn


def lr_at(
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    initial_lr: float,
    peak_lr: float,
    min_lr: float,
) -> float:
    if total_steps <= 0 or warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(
            f"lr_at: need 0 <= warmup_steps ({warmup_steps}) <= total_steps "
            f"({total_steps}) and total_steps > 0"
        )
    if step < 0:
        raise ValueError(f"lr_at: step must be >= 0, got {step}")
    if step < warmup_steps:
        return initial_lr + step * (peak_lr - initial_lr) / warmup_steps
    decay_steps = total_steps - warmup_steps
    progress = 0.0 if decay_steps == 0 else min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def build_adamw(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    decay, no_decay = [], []
    seen = set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("build_adamw: the model has no trainable parameters")
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=tuple(betas), eps=eps)


def clip_gradients(
    params,
    max_norm: float | None,
    *,
    step: int = 0,
    warmup_steps: int = 0,
    after_warmup_only: bool = False,
) -> float:
    """Clip the global grad norm to `max_norm` (None/<=0: never); return the norm before clipping."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    active = (
        max_norm is not None and max_norm > 0 and not (after_warmup_only and step < warmup_steps)
    )
    limit = max_norm if active else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(params, limit))


def plot_schedule(
    path: str | Path,
    *,
    warmup_steps: int,
    total_steps: int,
    initial_lr: float,
    peak_lr: float,
    min_lr: float,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = list(range(total_steps + 1))
    lrs = [
        lr_at(
            s,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            initial_lr=initial_lr,
            peak_lr=peak_lr,
            min_lr=min_lr,
        )
        for s in steps
    ]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, lrs)
    ax.axvline(warmup_steps, ls="--", lw=0.8, color="grey")
    ax.set(xlabel="step", ylabel="learning rate", title="linear warmup + cosine decay")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def scheduled_lr(optimizer, optim_cfg, step: int, total_steps: int) -> float:
    """Set and return the learning rate of 1-based `step` of `total_steps` under `optim.*`
    (`lr` peak, `initial_lr`, `min_lr`, `warmup_steps`): what both trainers apply each step."""
    lr = lr_at(
        step,
        warmup_steps=optim_cfg.warmup_steps,
        total_steps=total_steps,
        initial_lr=optim_cfg.initial_lr,
        peak_lr=optim_cfg.lr,
        min_lr=optim_cfg.min_lr,
    )
    set_lr(optimizer, lr)
    return lr
