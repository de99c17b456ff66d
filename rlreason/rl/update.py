"""The policy update of one RL step: old/reference log-probs, then mu epochs of mini-batch steps.

`Updater.prepare(batch)` runs the no-grad passes the loss needs: old log-probs (only when the
update is off-policy, i.e. epochs > 1 or several mini-batches; otherwise the first forward's own
detached log-probs are exact), reference log-probs (adapters disabled, or a frozen copy when
training all weights) whenever KL is in the loss or logged, and PPO's old values. It also measures
sampler-vs-trainer log-prob mismatch. `Updater.update(batch, step)` then runs `epochs` passes over
seeded permutations of the rows, `minibatches` optimizer steps per pass, micro-batches sized by a
token budget, gradient clipping and AdamW; a non-finite loss or gradient skips the optimizer step.

Departures, stated: the value head reads the same trunk as the policy (shared trunk, as the issue
asks); GAE advantages are not whitened.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from rlreason.model.lora import disable_adapters, lora_modules
from rlreason.optim import clip_gradients
from rlreason.rl.batch import RolloutBatch, micro_batches
from rlreason.rl.logprobs import pack, token_logprobs
from rlreason.rl.losses import get_aggregation, total_loss
from rlreason.rl.value import value_loss


@dataclass
class Prepared:
    old_logp: torch.Tensor | None  # (B, T) or None: on-policy, use the live log-probs detached
    ref_logp: torch.Tensor | None  # (B, T)
    old_values: torch.Tensor | None  # (B, T)
    metrics: dict[str, float]


class Updater:
    def __init__(
        self,
        model,
        optimizer,
        algo,
        optim_cfg,
        *,
        pad_id: int,
        max_new_tokens: int,
        temperature: float,
        reference=None,
        value_head=None,
    ):
        self.model, self.optimizer, self.algo, self.ocfg = model, optimizer, algo, optim_cfg
        self.pad_id, self.max_new_tokens, self.temperature = pad_id, max_new_tokens, temperature
        self.reference, self.value_head = reference, value_head
        self.agg = get_aggregation(algo.aggregation)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if value_head is not None:
            self.params += list(value_head.parameters())

    @property
    def off_policy(self) -> bool:
        return self.algo.epochs > 1 or self.algo.minibatches > 1

    def _micro(self, batch: RolloutBatch, rows: list[int]) -> list[list[int]]:
        plens = [len(p) for p in batch.prompt_ids]
        clens = [max(int(m), 1) for m in batch.mask.sum(1).tolist()]
        return micro_batches(rows, plens, clens, self.algo.micro_batch_tokens)

    def _forward(self, model, batch: RolloutBatch, rows: list[int], with_hidden=False):
        sub = batch.rows(rows)
        T = max(int(sub.mask.sum(1).max()), 1)
        packed = pack(sub.prompt_ids, sub.tokens[:, :T], sub.mask[:, :T], self.pad_id)
        out = token_logprobs(
            model,
            packed,
            temperature=self.temperature,
            chunk=self.algo.logprob_chunk,
            with_hidden=with_hidden,
        )
        return sub, T, out

    @torch.no_grad()
    def _no_grad_pass(self, model, batch, context, with_values=False):
        B, T = batch.tokens.shape
        logp = torch.zeros(B, T, device=batch.tokens.device)
        values = torch.zeros(B, T, device=batch.tokens.device) if with_values else None
        with context:
            for rows in self._micro(batch, list(range(B))):
                _, t, out = self._forward(model, batch, rows, with_hidden=with_values)
                logp[rows, :t] = out[0].float()
                if with_values:
                    values[rows, :t] = self.value_head(out[2])
        return logp * batch.mask, values

    def prepare(self, batch: RolloutBatch) -> Prepared:
        metrics: dict[str, float] = {}
        needs_values = self.value_head is not None
        old_logp = old_values = ref_logp = None
        if self.off_policy or needs_values:
            was = self.model.training
            self.model.eval()
            old_logp, old_values = self._no_grad_pass(
                self.model, batch, contextlib.nullcontext(), needs_values
            )
            self.model.train(was)
            metrics.update(mismatch_metrics(batch.sampler_logp, old_logp, batch.mask))
            old_logp = old_logp if self.off_policy else None
        if self.algo.kl_coef != 0 or self.algo.log_kl:
            ref_model, ctx = self._reference()
            ref_logp, _ = self._no_grad_pass(ref_model, batch, ctx)
        return Prepared(old_logp, ref_logp, old_values, metrics)

    def _reference(self):
        if lora_modules(self.model):
            return self.model, disable_adapters(self.model)
        if self.reference is None:
            raise ValueError(
                "KL needs a reference policy: use LoRA (adapters disabled) or pass "
                "a frozen reference model when training all weights"
            )
        return self.reference, contextlib.nullcontext()

    def update(self, batch: RolloutBatch, prep: Prepared, step: int, seed: int) -> dict[str, float]:
        a, B = self.algo, len(batch)
        sums: dict[str, float] = {}
        n_steps = skipped = 0
        g = torch.Generator().manual_seed(seed)
        self.model.train()
        for epoch in range(a.epochs):
            perm = (
                torch.randperm(B, generator=g).tolist()
                if a.epochs > 1 or a.minibatches > 1
                else list(range(B))
            )
            size = B // a.minibatches
            for m in range(a.minibatches):
                rows = perm[m * size : (m + 1) * size]
                stats = self._minibatch(batch, prep, rows)
                gn = clip_gradients(
                    self.params,
                    self.ocfg.grad_clip,
                    step=step - 1,
                    warmup_steps=self.ocfg.warmup_steps,
                    after_warmup_only=self.ocfg.clip_after_warmup,
                )
                stats["policy/grad_norm"] = gn
                if not (math.isfinite(gn) and math.isfinite(stats["loss/total"])):
                    self.optimizer.zero_grad(set_to_none=True)
                    skipped += 1
                else:
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                n_steps += 1
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
        out = {k: v / n_steps for k, v in sums.items()}
        out["train/skipped_updates"] = float(skipped)
        out["train/optimizer_steps"] = float(n_steps - skipped)
        return out

    def _minibatch(self, batch: RolloutBatch, prep: Prepared, rows: list[int]):
        norm = self.agg.normalizer(batch.mask[rows], max_len=self.max_new_tokens)
        stats: dict[str, float] = {}
        for micro in self._micro(batch, rows):
            sub, T, out = self._forward(
                self.model, batch, micro, with_hidden=self.value_head is not None
            )
            logp, entropy = out[0], out[1]  # (b, T)
            mask = sub.mask[:, :T]
            if prep.old_logp is None:  # on-policy: one mini-batch; measure mismatch here
                old = logp.detach()
                _accumulate(
                    stats,
                    mismatch_metrics(sub.sampler_logp[:, :T], old, mask),
                    weight=float(mask.sum()) / max(norm.n_tokens, 1.0),
                )
            else:
                old = prep.old_logp[micro, :T]
            adv = sub.adv[:, :T] if sub.adv.dim() == 2 else sub.adv
            ref = prep.ref_logp[micro, :T] if prep.ref_logp is not None else None
            loss, s = total_loss(
                logp,
                old,
                adv,
                mask,
                norm,
                aggregation=self.agg,
                ref_logp=ref,
                entropy=entropy,
                kl_coef=self.algo.kl_coef,
                kl_kind=self.algo.kl_kind,
                entropy_coef=self.algo.entropy_coef,
                clip_low=self.algo.clip_low,
                clip_high=self.algo.clip_high,
                dual_clip=self.algo.dual_clip,
                ratio_level=self.algo.ratio_level,
            )
            if self.value_head is not None:
                values = self.value_head(out[2])  # (b, T)
                vloss, vs = value_loss(
                    values,
                    prep.old_values[micro, :T],
                    sub.returns[:, :T],
                    mask,
                    norm,
                    clip=self.algo.value_clip,
                    aggregation=self.agg,
                )
                loss = loss + self.algo.value_coef * vloss
                s.update(vs)
            loss.backward()
            _accumulate(stats, s)
        return stats


def _accumulate(into: dict, new: dict, weight: float = 1.0) -> None:
    for k, v in new.items():
        into[k] = into.get(k, 0.0) + weight * v


def mismatch_metrics(
    sampler_logp: torch.Tensor, trainer_logp: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """Token-mean |sampler - trainer| log-prob and the k3 KL estimate between them."""
    n = mask.sum().clamp(min=1)
    diff = (trainer_logp.float() - sampler_logp.float()) * mask  # (B, T)
    k3 = (torch.exp(-diff) + diff - 1) * mask
    return {
        "policy/logprob_mismatch": float(diff.abs().sum() / n),
        "policy/logprob_mismatch_kl": float(k3.sum() / n),
    }
