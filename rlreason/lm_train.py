"""A small next-token training loop over token-id sequences (the demo's pretraining).

`pad_batch` right-pads sequences into ids and a loss mask over next-token targets (a target
counts at or after its sequence's `loss_start`); `masked_lm_loss` sums cross-entropy over the
counted targets; `batch_order` groups similar lengths so a batch wastes little padding;
`train_lm` runs AdamW with warmup + cosine and global-norm clipping and returns the losses.

Every batch is divided by the same denominator, the corpus-wide mean number of counted targets
per batch, so every token weighs the same in every batch: with a per-batch token mean and length
bucketing, a token in a batch of long documents would weigh several times less than one in a
batch of short ones, skewing what the model learns towards short documents.

Not here: model construction and seeding (the caller's), data generation, Hydra, logging backends
(an optional `log(step, loss, lr)` callback), gradient accumulation, devices other than the
model's own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from rlreason.optim import build_adamw, clip_gradients, lr_at, set_lr


@dataclass(frozen=True)
class LMTrainConfig:
    steps: int = 1000
    batch_size: int = 64
    peak_lr: float = 3e-3
    initial_lr: float = 0.0
    min_lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    bucket_batches: int = 16  # length bucketing: sort within this many batches (1: off)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.bucket_batches < 1:
            raise ValueError(
                f"LMTrainConfig: steps, batch_size and bucket_batches must be >= 1 "
                f"(got {self.steps}, {self.batch_size}, {self.bucket_batches})"
            )
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(
                f"LMTrainConfig: warmup_steps={self.warmup_steps} must lie in "
                f"[0, steps={self.steps}]"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def pad_batch(
    seqs: Sequence[Sequence[int]], pad_id: int, loss_starts: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, T) right-padded with `pad_id`, mask (B, T-1) float: 1 where target t+1 counts."""
    if not seqs or any(len(s) < 2 for s in seqs):
        raise ValueError("pad_batch: need a non-empty list of sequences of at least 2 tokens")
    if loss_starts is not None and len(loss_starts) != len(seqs):
        raise ValueError(f"pad_batch: {len(loss_starts)} loss_starts for {len(seqs)} sequences")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)  # (B, T)
    lengths = torch.tensor([len(s) for s in seqs])  # (B,)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    starts = torch.tensor(list(loss_starts) if loss_starts is not None else [0] * len(seqs))
    target_pos = torch.arange(1, T)[None, :]  # (1, T-1)
    mask = (target_pos < lengths[:, None]) & (target_pos >= starts[:, None])
    return ids, mask.float()  # (B, T), (B, T-1)


def masked_lm_loss(
    model, ids: torch.Tensor, mask: torch.Tensor, denom: float | None = None
) -> torch.Tensor:
    """Next-token cross-entropy summed over `mask` (B, T-1) / `denom` (None: mask count)."""
    logits = model(ids[:, :-1])  # (B, T-1, V)
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1), reduction="none"
    )  # (B*(T-1),)
    mask = mask.reshape(-1)
    count = mask.sum()
    if float(count) == 0:
        raise ValueError("masked_lm_loss: the batch has no target token to learn from")
    return (nll * mask).sum() / (count if denom is None else denom)


def batch_order(
    lengths: Sequence[int], batch_size: int, seed: int, bucket_batches: int = 16
) -> list[list[int]]:
    """One epoch of index batches: shuffled, length-sorted within buckets, batches shuffled."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    bucket = batch_size * bucket_batches
    batches = []
    for lo in range(0, len(order), bucket):
        chunk = sorted(order[lo : lo + bucket], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _batches(lengths: Sequence[int], cfg: LMTrainConfig):
    epoch = 0
    while True:
        yield from batch_order(
            lengths, cfg.batch_size, cfg.seed * 100_003 + epoch, cfg.bucket_batches
        )
        epoch += 1


def train_lm(
    model,
    seqs: Sequence[Sequence[int]],
    cfg: LMTrainConfig,
    *,
    pad_id: int,
    loss_starts: Sequence[int] | None = None,
    log: Callable[[int, float, float], None] | None = None,
) -> list[float]:
    """Train `model` in place for `cfg.steps` steps on `seqs`; returns the loss of every step."""
    if not seqs:
        raise ValueError("train_lm: no training sequences")
    device = next(model.parameters()).device
    opt = build_adamw(model, cfg.peak_lr, weight_decay=cfg.weight_decay)
    lengths = [len(s) for s in seqs]
    starts = loss_starts if loss_starts is not None else [0] * len(seqs)
    counted = sum(n - max(st, 1) for n, st in zip(lengths, starts))  # targets in the corpus
    denom = cfg.batch_size * counted / len(seqs)  # fixed per-batch divisor
    batches = _batches(lengths, cfg)
    losses: list[float] = []
    model.train()
    for step in range(cfg.steps):
        lr = lr_at(
            step,
            warmup_steps=cfg.warmup_steps,
            total_steps=cfg.steps,
            initial_lr=cfg.initial_lr,
            peak_lr=cfg.peak_lr,
            min_lr=cfg.min_lr,
        )
        set_lr(opt, lr)
        idx = next(batches)
        ids, mask = pad_batch(
            [seqs[i] for i in idx],
            pad_id,
            None if loss_starts is None else [loss_starts[i] for i in idx],
        )
        loss = masked_lm_loss(model, ids.to(device), mask.to(device), denom)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, losses[-1], lr)
    model.eval()
    return losses
