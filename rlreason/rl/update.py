"""The policy update of one RL step, as plain functions: no-grad passes, then the optimizer steps.

`prepare` runs the no-grad passes the loss needs: old log-probs (only when the update is
off-policy, i.e. epochs > 1 or several mini-batches; otherwise the first forward's own detached
log-probs are exact), reference log-probs (adapters disabled under LoRA, else the frozen copy)
whenever KL is in the loss or logged, and PPO's old values; it also measures the sampler-vs-trainer
log-prob mismatch. With a teacher (on-policy distillation, an estimator with `needs_teacher`)
it also runs the frozen teacher (eval mode, the reference pass's packing, micro-batches and
temperature) and takes the student's pre-update log-probs (the old log-probs when they are
computed anyway, else one more no-grad pass), and logs `distill/*` (rl/distill.py).
`update` runs `epochs` passes over seeded permutations of the rows, `minibatches` optimizer
steps per pass, micro-batches cut by a token budget, gradient clipping and AdamW; a non-finite
loss or gradient skips that optimizer step.

Data-parallel ranks pass a `shard` (rl/shard.py: `Shard`): the permutation then runs over the
GLOBAL rows and each rank takes its rows of every mini-batch (possibly none), the mini-batch's
LossNorm counts are summed over ranks before the loss, and its gradients and additive stats after
the micro-batch loop, so clipping and AdamW see the single-process gradient on every rank.
Sharded weights (train.parallel=fsdp2, rl/fsdp.py) are reduce-scattered by FSDP in each backward,
summed; every rank then runs as many backwards per mini-batch as the busiest one (zero-loss ones).

The caller (the trainer) owns model, optimizer, reference, teacher and value head and passes
them in.
Departures, stated: the value head reads the policy's trunk (shared trunk); GAE advantages are not
whitened.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from rlreason.model.lora import disable_adapters, lora_modules
from rlreason.optim import clip_gradients
from rlreason.rl import fsdp
from rlreason.rl.batch import RolloutBatch, micro_batches
from rlreason.rl.distill import distill_metrics
from rlreason.rl.logprobs import pack, token_logprobs
from rlreason.rl.losses import LossSettings, get_aggregation, total_loss
from rlreason.rl.value import value_loss


@dataclass(frozen=True)
class Policy:
    """What the update acts on: the model, its optional value head, KL reference and teacher."""

    model: torch.nn.Module
    value_head: torch.nn.Module | None = None
    reference: torch.nn.Module | None = None  # frozen copy when training all weights (KL)
    teacher: torch.nn.Module | None = None  # frozen, on-policy distillation only (never trained)

    def trainable(self) -> list[torch.nn.Parameter]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return params + (list(self.value_head.parameters()) if self.value_head else [])


@dataclass(frozen=True)
class Forward:
    """How a batch is run through the model: padding id, sampling temperature, chunking."""

    pad_id: int
    temperature: float
    max_new_tokens: int  # Dr. GRPO's constant L
    micro_batch_tokens: int = 8192
    logprob_chunk: int = 64


@dataclass
class Prepared:
    old_logp: torch.Tensor | None  # (B, T) or None: on-policy, use the live log-probs detached
    ref_logp: torch.Tensor | None  # (B, T)
    old_values: torch.Tensor | None  # (B, T)
    metrics: dict[str, float]
    teacher_logp: torch.Tensor | None = None  # (B, T) distillation: the teacher's, 0 off the mask
    student_logp: torch.Tensor | None = None  # (B, T) distillation: the pre-update student's


def off_policy(algo) -> bool:
    return algo.epochs > 1 or algo.minibatches > 1


def _micro(batch: RolloutBatch, rows: list[int], fwd: Forward) -> list[list[int]]:
    plens = [len(p) for p in batch.prompt_ids]
    clens = [max(int(m), 1) for m in batch.mask.sum(1).tolist()]
    return micro_batches(rows, plens, clens, fwd.micro_batch_tokens)


def _forward(model, batch: RolloutBatch, rows: list[int], fwd: Forward, with_hidden=False):
    sub = batch.rows(rows)
    T = max(int(sub.mask.sum(1).max()), 1)
    sub = sub.crop(T)  # every per-token field (b, T)
    packed = pack(sub.prompt_ids, sub.tokens, sub.mask, fwd.pad_id)
    out = token_logprobs(
        model, packed, temperature=fwd.temperature, chunk=fwd.logprob_chunk, with_hidden=with_hidden
    )
    return sub, T, out


@torch.no_grad()
def _no_grad_pass(model, batch: RolloutBatch, fwd: Forward, value_head=None):
    B, T = batch.tokens.shape
    logp = torch.zeros(B, T, device=batch.tokens.device)  # (B, T)
    values = torch.zeros(B, T, device=batch.tokens.device) if value_head is not None else None
    for rows in _micro(batch, list(range(B)), fwd):
        _, t, out = _forward(model, batch, rows, fwd, with_hidden=value_head is not None)
        logp[rows, :t] = out[0].float()
        if value_head is not None:
            values[rows, :t] = value_head(out[2])
    return logp * batch.mask, values


def has_reference(policy: Policy) -> bool:
    """A reference policy exists: the adapters-off model under LoRA, or a frozen copy."""
    return bool(lora_modules(policy.model)) or policy.reference is not None


def reference_policy(policy: Policy):
    """(model, context) that computes the reference log-probs: adapters off under LoRA."""
    if lora_modules(policy.model):
        return policy.model, disable_adapters(policy.model)
    if policy.reference is None:
        raise ValueError(
            "KL needs a reference policy: use LoRA (adapters disabled) or pass "
            "a frozen reference model when training all weights"
        )
    return policy.reference, contextlib.nullcontext()


def prepare(policy: Policy, batch: RolloutBatch, algo, fwd: Forward) -> Prepared:
    """Old log-probs (off-policy), reference log-probs (KL), old values (PPO) and, with a
    teacher, the teacher's and the student's log-probs (distillation), all without grad."""
    batch.check_devices(next(policy.model.parameters()).device)  # the batch sits with the model
    metrics: dict[str, float] = {}
    old_logp = old_values = ref_logp = student_logp = teacher_logp = None
    if off_policy(algo) or policy.value_head is not None:
        old_logp, old_values = _student_pass(policy, batch, fwd, policy.value_head)
        metrics.update(mismatch_metrics(batch.sampler_logp, old_logp, batch.mask))
        student_logp = old_logp
        old_logp = old_logp if off_policy(algo) else None
    if algo.kl_coef != 0 or (algo.log_kl and has_reference(policy)):
        ref_model, ctx = reference_policy(policy)
        with ctx:
            ref_logp, _ = _no_grad_pass(ref_model, batch, fwd)
    if policy.teacher is not None:
        if student_logp is None:  # on-policy update: no old pass ran, so run the student once
            student_logp, _ = _student_pass(policy, batch, fwd)
        policy.teacher.eval()
        teacher_logp, _ = _no_grad_pass(policy.teacher, batch, fwd)  # (B, T)
        metrics.update(distill_metrics(teacher_logp, student_logp, batch.mask))
    return Prepared(old_logp, ref_logp, old_values, metrics, teacher_logp, student_logp)


def _student_pass(policy: Policy, batch: RolloutBatch, fwd: Forward, value_head=None):
    """(logp (B, T), values | None) of the live student in eval mode, without grad."""
    was = policy.model.training
    policy.model.eval()
    try:
        return _no_grad_pass(policy.model, batch, fwd, value_head)
    finally:
        policy.model.train(was)


def update(
    policy, optimizer, batch, prep, algo, optim_cfg, fwd, *, step, seed, scaler=None, shard=None
) -> dict:
    """`algo.epochs` x `algo.minibatches` optimizer steps on `batch`; mean stats over them.

    `scaler` (a `torch.amp.GradScaler`, float16 compute): losses are scaled before backward and
    gradients unscaled before clipping; an overflow skips that step and lowers the scale
    (`train/overflow_skips`), without counting as a non-finite step. `shard`: this rank's part of
    a data-parallel update (module docstring)."""
    B = len(batch) if shard is None else shard.total_rows
    sums, n_steps, skipped, overflows = {}, 0, 0, 0
    params = policy.trainable()
    loss_cfg = LossSettings.from_algo(algo)
    g = torch.Generator().manual_seed(seed)
    policy.model.train()
    for _epoch in range(algo.epochs):
        perm = torch.randperm(B, generator=g).tolist() if off_policy(algo) else list(range(B))
        size = B // algo.minibatches
        for m in range(algo.minibatches):
            rows = perm[m * size : (m + 1) * size]
            rows = rows if shard is None else shard.local_rows(rows)
            stats = _minibatch(policy, batch, prep, rows, algo, fwd, loss_cfg, scaler, shard)
            if shard is not None:
                shard.reduce_grads(params)
                stats = shard.reduce_stats(stats)
            if scaler is not None:
                scaler.unscale_(optimizer)
            gn = clip_gradients(
                params,
                optim_cfg.grad_clip,
                step=step,
                warmup_steps=optim_cfg.warmup_steps,
                after_warmup_only=optim_cfg.clip_after_warmup,
            )
            stats["policy/grad_norm"] = gn
            finite = math.isfinite(gn) and math.isfinite(stats["loss/total"])
            if scaler is not None:
                scaler.step(optimizer)  # skips the step itself when a gradient overflowed
                scaler.update()
                overflows += int(math.isfinite(stats["loss/total"]) and not finite)
                skipped += int(not math.isfinite(stats["loss/total"]))
            elif finite:
                optimizer.step()
            else:
                skipped += 1
            optimizer.zero_grad(set_to_none=True)
            n_steps += 1
            _accumulate(sums, stats)
    out = {k: v / n_steps for k, v in sums.items()}
    out["train/skipped_updates"] = float(skipped)
    out["train/optimizer_steps"] = float(n_steps - skipped - overflows)
    if scaler is not None:
        out["train/overflow_skips"] = float(overflows)
        out["train/loss_scale"] = float(scaler.get_scale())
    return out


def _minibatch(policy, batch, prep, rows, algo, fwd, loss_cfg, scaler=None, shard=None) -> dict:
    """Backward over the micro-batches of `rows`; the loss norm is the whole mini-batch's (over
    every rank's rows of it, with a `shard`)."""
    agg = get_aggregation(algo.aggregation)
    norm = agg.normalizer(batch.mask[rows], max_len=fwd.max_new_tokens)
    if shard is not None:
        norm = shard.reduce_norm(norm)
    head, stats = policy.value_head, {}
    micros = _micro(batch, rows, fwd)
    pad = fsdp.backward_padding(policy.model, shard.dist, len(micros)) if shard else 0
    for micro in micros:
        sub, T, out = _forward(policy.model, batch, micro, fwd, with_hidden=head is not None)
        logp, entropy, mask = out[0], out[1], sub.mask  # (b, T)
        if prep.old_logp is None:  # on-policy: one mini-batch; measure the mismatch here
            old = logp.detach()
            share = float(mask.sum()) / max(norm.n_tokens, 1.0)
            _accumulate(stats, mismatch_metrics(sub.sampler_logp, old, mask), share)
        else:
            old = prep.old_logp[micro, :T]  # (b, T)
        ref = prep.ref_logp[micro, :T] if prep.ref_logp is not None else None  # (b, T)
        loss, s = total_loss(
            logp, old, sub.adv, mask, norm, loss_cfg, ref_logp=ref, entropy=entropy
        )
        if head is not None:
            values = head(out[2])  # (b, T)
            vloss, vs = value_loss(
                values,
                prep.old_values[micro, :T],
                sub.returns,
                mask,
                norm,
                clip=algo.value_clip,
                aggregation=agg,
            )
            loss = loss + algo.value_coef * vloss
            s.update(vs)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        _accumulate(stats, s)
    for _ in range(pad):  # FSDP2: as many backwards (reduce-scatters) as the busiest rank
        fsdp.zero_backward(policy.model)
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
