"""The SFT loop: batches of (prompt, completion) sequences → completion-only loss → AdamW → log →
eval → save.

`SFTTrainer` runs `train.steps` optimizer steps of `sft.batch_size` sequences each, drawn from a
seeded per-epoch permutation of the training sequences indexed by a data position (as the RL
trainer draws prompts). A step's sequences are cut into micro-batches of at most
`sft.micro_batch_tokens` padded tokens (gradient accumulation); every micro-batch's loss is
divided by the completion-token count of the WHOLE step, so the accumulated gradient is that of
one batch holding every sequence. The learning rate follows `optim.*`'s warmup + cosine
(`lr_at` at step s = 1..steps, like the RL trainer), gradients are clipped to `optim.grad_clip`,
float16 compute uses a loss scaler, and a non-finite loss or gradient skips the step
(`train.max_bad_steps` in a row abort).

Evaluation (before training, every `eval.every` steps and at the end): the completion-token mean
loss on the held-out sequences (`sft/eval_loss`) and, when an `evaluate` callback is handed in (the
env's `evaluate_policy`), its `eval/*` metrics. Checkpoints (rlreason.checkpoint, the RL run's
layout) hold the trainable weights, optimizer, RNG states, step, data position, tokens and loss
scaler, so `train.stop_after=N` then `train.resume=<run dir>` continues exactly.

Not here: reading the data (rlreason/sft/data.py), building the model, env or logger
(experiments/sft.py); it imports neither envs, rewards nor Hydra.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlreason.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from rlreason.data_order import EpochOrder
from rlreason.lm_train import masked_lm_loss, pad_batch
from rlreason.model.precision import loss_scaler
from rlreason.optim import build_adamw, clip_gradients, scheduled_lr
from rlreason.sft.data import SFTSequence

PHASES = ("train", "eval")


def micro_batches(seqs: Sequence[SFTSequence], token_budget: int) -> list[list[SFTSequence]]:
    """`seqs` sorted by length and cut into groups whose padded size (n * longest) fits the
    budget; a sequence longer than the budget goes alone."""
    out: list[list[SFTSequence]] = []
    cur: list[SFTSequence] = []
    for s in sorted(seqs, key=lambda s: len(s.ids)):
        if cur and (len(cur) + 1) * len(s.ids) > token_budget:
            out.append(cur)
            cur = []
        cur.append(s)
    return out + [cur] if cur else out


def batch_tensors(seqs: Sequence[SFTSequence], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    """ids (B, T) right-padded and the loss mask (B, T-1): 1 on completion (and EOS) targets."""
    ids, mask = pad_batch([s.ids for s in seqs], pad_id, [s.loss_start for s in seqs])
    return ids.to(device), mask.to(device)  # (B, T), (B, T-1)


@dataclass
class SFTTrainer:
    cfg: Any  # rlreason.config.Config: sft.*, train.*, optim.*, eval.every, seed
    model: torch.nn.Module
    train_data: Sequence[SFTSequence]
    eval_data: Sequence[SFTSequence]  # held out: `sft/eval_loss` (empty: none)
    pad_id: int
    run_dir: Path
    logger: Any  # rlreason.tracking.Logger
    evaluate: Callable[[], dict[str, float]] | None = None  # the env's eval: `eval/*` metrics
    step: int = 0
    data_pos: int = 0
    tokens: int = 0  # completion tokens of the optimizer steps taken
    optimizer_steps: int = 0
    bad_streak: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    def __post_init__(self) -> None:
        if not self.train_data:
            raise ValueError("SFTTrainer: no training sequences")
        o = self.cfg.optim
        self.optimizer = build_adamw(self.model, o.lr, o.weight_decay, tuple(o.betas))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.scaler = loss_scaler(self.model)  # float16 compute only
        self.device = next(self.model.parameters()).device
        self.run_dir = Path(self.run_dir)
        self._order = EpochOrder(len(self.train_data), self.cfg.seed)  # the data order

    # ------------------------------------------------------------------ data
    def next_batch(self, n: int) -> list[SFTSequence]:
        """The next `n` sequences of a seeded per-epoch permutation; advances the data position."""
        out = self._order.take(self.train_data, self.data_pos, n)
        self.data_pos += n
        return out

    # ------------------------------------------------------------------ one step
    def schedule_lr(self, step: int) -> float:
        return scheduled_lr(self.optimizer, self.cfg.optim, step, self.cfg.train.steps)

    def accumulate(self, batch: Sequence[SFTSequence]) -> float:
        """Backward of the batch's completion-token mean loss, micro-batch by micro-batch (the
        gradients add up in `.grad`); returns that loss."""
        denom = float(sum(s.n_targets for s in batch))
        total = 0.0
        for micro in micro_batches(batch, self.cfg.sft.micro_batch_tokens):
            ids, mask = batch_tensors(micro, self.pad_id, self.device)  # (b, T), (b, T-1)
            loss = masked_lm_loss(self.model, ids, mask, denom)  # this micro-batch's share
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            total += float(loss.detach())
        return total

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step on the next `sft.batch_size` sequences; its metrics."""
        o, t0 = self.cfg.optim, time.perf_counter()
        lr = self.schedule_lr(step)
        batch = self.next_batch(self.cfg.sft.batch_size)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.accumulate(batch)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = clip_gradients(
            self.params,
            o.grad_clip,
            step=step,
            warmup_steps=o.warmup_steps,
            after_warmup_only=o.clip_after_warmup,
        )
        flags = self._optimizer_step(loss, grad_norm)
        self.optimizer.zero_grad(set_to_none=True)
        n_targets = sum(s.n_targets for s in batch)
        self.tokens += n_targets if flags["stepped"] else 0
        seconds = time.perf_counter() - t0
        self.seconds["train"] += seconds
        metrics = {
            "sft/loss": loss,
            "lr": lr,
            "policy/grad_norm": grad_norm,
            "sft/tokens": float(n_targets),
            "sft/epoch": self.data_pos / len(self.train_data),
            "perf/tokens_per_s": sum(len(s.ids) for s in batch) / max(seconds, 1e-9),
            "perf/step_s": seconds,
            "train/skipped_updates": float(flags["bad"]),
        }
        if self.scaler is not None:
            metrics["train/overflow_skips"] = float(flags["overflow"])
            metrics["train/loss_scale"] = float(self.scaler.get_scale())
        return metrics

    def _optimizer_step(self, loss: float, grad_norm: float) -> dict[str, bool]:
        """AdamW step unless the loss or gradient is non-finite; a float16 overflow (finite loss,
        infinite gradient) lowers the loss scale and is not a bad step."""
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        bad, overflow = not math.isfinite(loss), False
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips the step itself on an inf/nan gradient
            self.scaler.update()
            overflow = not finite and not bad
        elif finite:
            self.optimizer.step()
        else:
            bad = True
        self.optimizer_steps += int(finite)
        self._count_bad(bad)
        return {"stepped": finite, "bad": bad, "overflow": overflow}

    def _count_bad(self, bad: bool) -> None:
        if not bad:
            self.bad_streak = 0
            return
        self.bad_streak += 1
        print(
            f"[rlreason] step {self.step + 1}: non-finite loss or gradient; optimizer step "
            f"skipped ({self.bad_streak} in a row)"
        )
        if self.bad_streak >= self.cfg.train.max_bad_steps:
            raise FloatingPointError(
                f"{self.bad_streak} steps in a row had a non-finite loss or gradient; aborting. "
                "Lower optim.lr, keep optim.grad_clip on, or use model.dtype=float32."
            )

    # ------------------------------------------------------------------ eval
    @torch.no_grad()
    def eval_loss(self) -> float | None:
        """Completion-token mean loss over the held-out sequences (None: there are none)."""
        if not self.eval_data:
            return None
        was = self.model.training
        self.model.eval()
        denom, total = float(sum(s.n_targets for s in self.eval_data)), 0.0
        for micro in micro_batches(self.eval_data, self.cfg.sft.micro_batch_tokens):
            ids, mask = batch_tensors(micro, self.pad_id, self.device)  # (b, T), (b, T-1)
            total += float(masked_lm_loss(self.model, ids, mask, denom))
        self.model.train(was)
        return total

    def evaluate_now(self) -> dict[str, float]:
        """`sft/eval_loss` (held-out data) and the callback's `eval/*` metrics, as there are."""
        t0, metrics = time.perf_counter(), {}
        loss = self.eval_loss()
        if loss is not None:
            metrics["sft/eval_loss"] = loss
        if self.evaluate is not None:
            metrics.update(self.evaluate())
        self.seconds["eval"] += time.perf_counter() - t0
        return metrics

    # ------------------------------------------------------------------ save / resume
    def save(self) -> Path:
        return save_checkpoint(
            self.run_dir,
            self.step,
            model=self.model,
            optimizer=self.optimizer,
            state={
                "data_pos": self.data_pos,
                "bad_streak": self.bad_streak,
                "run_id": getattr(self.logger, "run_id", None),
                "seconds": self.seconds,
                "tokens": self.tokens,
                "optimizer_steps": self.optimizer_steps,
                "loss_scaler": self.scaler.state_dict() if self.scaler is not None else None,
            },
        )

    def resume(self, run_dir: str | Path) -> None:
        state = load_checkpoint(
            latest_checkpoint(run_dir), model=self.model, optimizer=self.optimizer
        )
        self.step, self.data_pos = state["step"], state["data_pos"]
        self.bad_streak = state.get("bad_streak", 0)
        self.tokens = state.get("tokens", 0)
        self.optimizer_steps = state.get("optimizer_steps", self.step)
        self.seconds.update(state.get("seconds", {}))
        if self.scaler is not None and state.get("loss_scaler"):
            self.scaler.load_state_dict(state["loss_scaler"])

    # ------------------------------------------------------------------ the loop
    def _log_eval(self, history: dict, key: str | None) -> None:
        metrics = self.evaluate_now()
        if metrics:
            self.logger.log(metrics, step=self.step)
        if key is not None:
            history[key] = metrics

    def _due(self, every: int) -> bool:
        return bool(every) and self.step % every == 0

    def run(self) -> dict[str, Any]:
        c = self.cfg
        last, history = c.train.stop_after or c.train.steps, {}
        if self.step == 0:
            self._log_eval(history, "before")
        bar = _progress(c.train.progress, self.step, last)
        try:
            while self.step < last:
                metrics = self.train_step(self.step + 1)
                self.step += 1
                self.logger.log(metrics, step=self.step)
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['sft/loss']:.4f}", lr=f"{metrics['lr']:.2e}")
                if self._due(c.eval.every) and self.step < c.train.steps:
                    self._log_eval(history, None)
                if self._due(c.train.save_every) and self.step < last:
                    self.save()
        except KeyboardInterrupt:
            bar.close()
            print(f"[rlreason] interrupted: checkpoint at step {self.step} in {self.save()}")
            return {**self._result(), "interrupted": True}
        bar.close()
        self.save()
        if self.step >= c.train.steps:
            self._log_eval(history, "after")
        return {**self._result(), **history}

    def _result(self) -> dict[str, Any]:
        return {
            "interrupted": False,
            "step": self.step,
            "seconds": dict(self.seconds),
            "tokens": self.tokens,
            "optimizer_steps": self.optimizer_steps,
        }


def _progress(enabled: bool, start: int, total: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, desc="sft", dynamic_ncols=True, disable=not enabled)
