"""The RL loop: sample prompts → rollouts → rewards → advantages → update → log → eval → save.

One `Trainer` composes the stages in that order (`train_step`), with variants picked from
registries by name. Everything is handed in (model, tokenizer, tasks, a `render` callable, a
duck-typed `Scorer`, a `Logger`): it imports neither envs, rewards nor Hydra, and parses no text.
Determinism: prompts come from a seeded per-epoch permutation indexed by a data position; each
step's sampling seed and mini-batch permutation derive from (seed, step). A checkpoint holds
trainable weights, optimizer, RNG states, data position, step and run id, so `train.stop_after=N`
then `train.resume=<run dir>` continues exactly (the LR schedule spans `train.steps`). Ctrl-C
saves and exits; `train.max_bad_steps` non-finite steps in a row abort.
Dynamic sampling (DAPO): flat-reward groups are dropped and more prompts sampled, at most
`algo.max_refill_rounds` extra rounds; departure: if fewer than `prompts_per_step` groups survive,
the step trains on those (DAPO samples until the batch is full). Rollout and reward metrics
describe the first round (the current policy, unselected).
Data-parallel under torchrun (`dist`, rlreason/distributed.py): each rank runs its slice of every
step's prompts and the reductions of rl/shard.py, so N ranks compute the step one process computes
for the same global batch; rank 0 alone logs and writes the run's files.
On-policy distillation (`algo.advantage=onpolicy_distill`, rl/distill.py) takes a frozen `teacher`:
`prepare` scores each batch with it, the advantages are per token; it is never trained or saved
(a resumed run reloads it from config). A teacher with another estimator only logs `distill/*`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlreason.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from rlreason.data_order import EpochOrder
from rlreason.distributed import Dist
from rlreason.eval.runner import evaluate_policy
from rlreason.model.lora import merged_adapters
from rlreason.model.precision import loss_scaler
from rlreason.optim import build_adamw, scheduled_lr
from rlreason.rl import fsdp, shard
from rlreason.rl.advantages import get_estimator, group_stats
from rlreason.rl.alarms import CollapseAlarm
from rlreason.rl.batch import RolloutBatch, concat
from rlreason.rl.losses import truncation_mask
from rlreason.rl.progress import progress
from rlreason.rl.timing import STEP_PHASES, PhaseClock
from rlreason.rl.update import Forward, Policy, prepare, update
from rlreason.sampling.batching import generate_in_batches
from rlreason.sampling.engine import ENGINES, generate
from rlreason.scoring import Scorer

PHASES = (*STEP_PHASES, "eval", "other")


@dataclass
class Trainer:
    cfg: Any  # rlreason.config.Config (or a DictConfig of it)
    model: torch.nn.Module
    tokenizer: Any
    train_tasks: Sequence
    eval_tasks: Sequence
    render: Callable[[Any], str]
    scorer: Scorer
    stop_strings: Sequence[str]
    run_dir: Path
    logger: Any
    reference: torch.nn.Module | None = None  # frozen copy when training all weights (KL)
    value_head: torch.nn.Module | None = None  # PPO (gae) only
    teacher: torch.nn.Module | None = None  # frozen, on-policy distillation (needs_teacher)
    dist: Dist = field(default_factory=Dist)  # this process among the data-parallel ranks
    step: int = 0
    data_pos: int = 0
    bad_streak: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    last_batch: RolloutBatch | None = None

    def __post_init__(self) -> None:
        c = self.cfg
        params = torch.nn.ModuleList([self.model] + ([self.value_head] if self.value_head else []))
        self.optimizer = build_adamw(params, c.optim.lr, c.optim.weight_decay, tuple(c.optim.betas))
        self.policy = Policy(self.model, self.value_head, self.reference, self.teacher)
        self.fwd = Forward(
            self.tokenizer.pad_id,
            c.sampling.temperature,
            c.sampling.max_new_tokens,
            c.algo.micro_batch_tokens,
            c.algo.logprob_chunk,
        )
        self.estimator = get_estimator(c.algo.advantage)
        if self.estimator.needs_teacher and self.teacher is None:
            raise ValueError(f"algo.advantage={c.algo.advantage} needs a teacher model")
        self.stop_strings = tuple(self.stop_strings)  # matched on decoded text
        self.scaler = loss_scaler(self.model)  # float16 compute only
        self.alarm = CollapseAlarm()
        self._order = EpochOrder(len(self.train_tasks), self.cfg.seed)  # the data order
        self.run_dir = Path(self.run_dir)
        self.rows: shard.Rows | None = None  # global rows of the last collected batch
        if not fsdp.is_sharded(self.model):  # sharded: every rank sliced the same full model
            self.dist.broadcast_tensors(self.policy.trainable())  # one start on every rank

    # ------------------------------------------------------------------ data
    def next_tasks(self, n: int) -> list:
        """The next `n` tasks of a seeded per-epoch permutation; advances the data position."""
        out = self._order.take(self.train_tasks, self.data_pos, n)
        self.data_pos += n
        return out

    # ------------------------------------------------------------------ one step
    def train_step(self, step: int) -> dict[str, float]:
        """One RL step, stage by stage; each stage's wall time goes to `perf/<phase>_s`."""
        a, o, clock = self.cfg.algo, self.cfg.optim, PhaseClock(self.seconds)
        # 1-2. rollouts and their rewards (dynamic sampling drops flat groups and refills)
        batch, metrics = self.collect(step, clock)
        self.last_batch = batch
        metrics["lr"] = self.schedule_lr(step)
        if batch is None:  # every group was flat: nothing to learn from
            return {**metrics, "train/skipped_updates": 1.0, **clock.metrics()}
        # 3. old and reference log-probs (PPO's old values, the teacher's), without grad
        with clock("ref"), fsdp.gathered(self.model, self.reference):
            prep = prepare(self.policy, batch, a, self.fwd)
        prep.metrics = shard.token_weighted(self.dist, prep.metrics, float(batch.mask.sum()))
        # 4. advantages: one signature for every estimator (global rewards; GAE and distillation
        # per row, from the row's values or its teacher and student log-probs)
        logps = None
        if prep.teacher_logp is not None:
            logps = {"teacher": prep.teacher_logp, "student": prep.student_logp}
        batch.adv, batch.returns, adv_m = shard.advantages(
            self.estimator, batch, prep.old_values, a, self.dist, self.rows, logps
        )
        metrics.update({**adv_m, **prep.metrics})
        # 5. the update: epochs x mini-batches of clipped-surrogate AdamW steps
        with clock("train"):
            seed = self._seed(step, 99)
            stats = update(
                self.policy,
                self.optimizer,
                batch,
                prep,
                a,
                o,
                self.fwd,
                step=step,
                seed=seed,
                scaler=self.scaler,
                shard=shard.Shard(self.dist, self.rows) if self.dist.world > 1 else None,
            )
        metrics.update(stats)
        self._check_finite(metrics)
        # 6. step timing and memory (the loop logs the metrics)
        return {**metrics, **clock.metrics()}

    def schedule_lr(self, step: int) -> float:
        return scheduled_lr(self.optimizer, self.cfg.optim, step, self.cfg.train.steps)

    def rollout(self, tasks: list, seed: int, clock: PhaseClock, row_offset=0, total_rows=None):
        """G completions per task from the live policy, scored; the batch and its metrics (those of
        the global batch when `tasks` are rows [row_offset, ...) of `total_rows`). Generation runs
        in `sampling.max_batch_tokens` sub-batches (sampling/batching.py) and, with
        `sampling.merge_lora` and adapters, on the adapters folded into the weights (restored
        bitwise after)."""
        c, G = self.cfg, self.cfg.algo.group_size
        prompts = [self.tokenizer.encode_prompt(self.render(t)) for t in tasks]
        t0 = time.perf_counter()
        merged = merged_adapters(self.model) if c.sampling.merge_lora else contextlib.nullcontext()
        with clock("gen"), fsdp.gathered(self.model), merged:  # FSDP2: unsharded once
            r = generate_in_batches(
                self.model,
                prompts,
                n=G,
                max_new_tokens=c.sampling.max_new_tokens,
                max_batch_tokens=c.sampling.max_batch_tokens,
                generate_fn=generate,  # the module global, looked up now (tests patch it)
                **ENGINES[c.sampling.engine],
                temperature=c.sampling.temperature,
                top_k=c.sampling.top_k,
                top_p=c.sampling.top_p,
                stop_strings=self.stop_strings,
                seed=seed,
                tokenizer=self.tokenizer,
                row_offset=row_offset,
                total_rows=total_rows,
            )
        gen_s = time.perf_counter() - t0
        group_tasks = [t for t in tasks for _ in range(G)]
        with clock("reward"):
            v = self.scorer(r.texts, group_tasks)
        mask = truncation_mask(r.finish_reasons, r.mask, c.algo.mask_truncated)  # (B, T)
        rewards = torch.tensor(v.total, dtype=torch.float32, device=r.tokens.device)  # (B,)
        batch = RolloutBatch(
            r.prompt_ids,
            r.tokens,
            mask,
            r.logprobs,
            rewards,
            r.finish_reasons,
            r.texts,
            group_tasks,
            dict(v.components),
        )
        lengths = [len(x) for x in r.completion_ids]
        metrics = shard.rollout_step_metrics(
            self.dist, lengths, r.finish_reasons, v.correct, v.metrics, gen_s
        )
        return batch, metrics

    def collect(self, step: int, clock: PhaseClock | None = None):
        """Rollouts of `prompts_per_step` prompts (this rank's slice of them); with dynamic
        sampling, only groups whose rewards differ are kept, refilling up to `max_refill_rounds`
        times, decided over every rank's groups. Sets `self.rows` (the batch's global rows)."""
        a, P, G = self.cfg.algo, self.cfg.train.prompts_per_step, self.cfg.algo.group_size
        clock = clock or PhaseClock(self.seconds)
        rounds = 1 + (a.max_refill_rounds if a.dynamic_sampling else 0)
        lo, hi = shard.prompt_span(self.dist, P)
        self.rows = shard.Rows.span(lo * G, hi * G, P * G)
        kept, metrics, order = [], {}, []  # order: global (round, group) of every kept group
        for rnd in range(rounds):
            tasks = self.next_tasks(P)[lo:hi]
            batch, m = self.rollout(tasks, self._seed(step, rnd), clock, lo * G, P * G)
            if G < 2:  # no groups: nothing to compare
                return batch, m
            stats = group_stats(batch.rewards, G)
            flags, keep = shard.keep_groups(self.dist, stats.zero_std.tolist(), lo, order, rnd)
            if rnd == 0:
                frac = torch.tensor(flags).float().mean().item()  # as group_stats computes it
                metrics = {**m, "group/zero_std_frac": frac}
            if not a.dynamic_sampling:
                return batch, metrics
            kept.append(batch.rows([g * G + i for g in keep for i in range(G)]))
            if len(order) >= P:
                break
        n_groups = min(len(order), P)
        metrics["group/refill_rounds"] = float(rnd)
        metrics["group/kept_groups"] = float(n_groups)
        if n_groups == 0:
            return None, metrics
        self.rows = shard.kept_rows(order, lo, hi, G, n_groups)
        batch = concat(kept, self.tokenizer.pad_id)
        return batch.rows(range(len(self.rows.global_rows))), metrics

    def _seed(self, step: int, salt: int = 0) -> int:
        return (self.cfg.seed * 1_000_003 + step * 7919 + salt) % (2**31)

    def _check_finite(self, metrics: dict[str, float]) -> None:
        if metrics.get("train/skipped_updates", 0.0) > 0:
            self.bad_streak += 1
            self._say(
                f"step {self.step + 1}: non-finite loss or gradient; optimizer step "
                f"skipped ({self.bad_streak} in a row)"
            )
            if self.bad_streak >= self.cfg.train.max_bad_steps:
                raise FloatingPointError(
                    f"{self.bad_streak} steps in a row had a non-finite loss or gradient; "
                    "aborting. Lower optim.lr, keep optim.grad_clip on, or use model.dtype=float32."
                )
        else:
            self.bad_streak = 0

    # ------------------------------------------------------------------ eval / save / resume
    def evaluate(self) -> dict[str, float]:
        c, t0 = self.cfg, time.perf_counter()
        tasks = list(self.eval_tasks)[: c.eval.n_problems]
        with fsdp.gathered(self.model):  # FSDP2: gathered once, no collective per decode step
            metrics = evaluate_policy(
                self.model,
                self.tokenizer,
                tasks,
                self.render,
                self.scorer,
                samples=c.eval.samples,
                temperature=c.sampling.temperature,
                top_k=c.sampling.top_k,
                top_p=c.sampling.top_p,
                max_new_tokens=c.eval.max_new_tokens or c.sampling.max_new_tokens,
                stop_strings=self.stop_strings,
                seed=c.eval.seed,
                dist=self.dist,
            )
        self.seconds["eval"] += time.perf_counter() - t0
        return metrics

    def save(self) -> Path:
        return save_checkpoint(
            self.run_dir,
            self.step,
            model=self.model,
            optimizer=self.optimizer,
            value_head=self.value_head,
            dist=self.dist,
            state={
                "data_pos": self.data_pos,
                "bad_streak": self.bad_streak,
                "run_id": self.logger.run_id,
                "seconds": self.seconds,
                "loss_scaler": self.scaler.state_dict() if self.scaler is not None else None,
            },
        )

    def resume(self, run_dir: str | Path) -> None:
        state = load_checkpoint(
            latest_checkpoint(run_dir),
            model=self.model,
            optimizer=self.optimizer,
            value_head=self.value_head,
            dist=self.dist,
        )
        self.step, self.data_pos = state["step"], state["data_pos"]
        self.bad_streak = state.get("bad_streak", 0)
        self.seconds.update(state.get("seconds", {}))
        if self.scaler is not None and state.get("loss_scaler"):
            self.scaler.load_state_dict(state["loss_scaler"])

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        c = self.cfg
        last = c.train.stop_after or c.train.steps
        history: dict[str, dict[str, float]] = {}
        if self.step == 0 and c.eval.n_problems > 0:
            history["before"] = self.evaluate()
            self.logger.log(history["before"], step=0)
        bar = progress(c.train.progress and self.dist.is_main, self.step, last)
        try:
            while self.step < last:
                metrics = self.train_step(self.step + 1)
                self.step += 1
                warnings = self.alarm.update(self.step, metrics)
                metrics.update(self.alarm.metrics())
                self.logger.log(metrics, step=self.step)
                for w in warnings:
                    self._say(f"collapse alarm at step {self.step}: {w}")
                if c.log.samples_every and self.step % c.log.samples_every == 0:
                    self.log_sample_table(self.last_batch)
                bar.update(1)
                bar.set_postfix(
                    reward=f"{metrics.get('reward/total/mean', float('nan')):.3f}",
                    acc=f"{metrics.get('accuracy', float('nan')):.2f}",
                    tok_s=f"{metrics.get('perf/tokens_per_s', 0):.0f}",
                )
                due_eval = (
                    c.eval.every and self.step % c.eval.every == 0 and self.step < c.train.steps
                )
                if due_eval and c.eval.n_problems > 0:
                    self.logger.log(self.evaluate(), step=self.step)
                if c.train.save_every and self.step % c.train.save_every == 0 and self.step < last:
                    self.save()
        except KeyboardInterrupt:
            bar.close()
            if self.dist.world > 1:  # ranks may sit in different collectives: no joint save
                print(
                    f"[rlreason rank {self.dist.rank}] interrupted at step {self.step}; not saved"
                )
                return {"interrupted": True, "step": self.step}
            print(f"[rlreason] interrupted: checkpoint at step {self.step} in {self.save()}")
            return {"interrupted": True, "step": self.step}
        bar.close()
        self.save()
        if self.step >= c.train.steps and c.eval.n_problems > 0:
            history["after"] = self.evaluate()
            self.logger.log(history["after"], step=self.step)
        return {
            "interrupted": False,
            "step": self.step,
            "seconds": dict(self.seconds),
            "alarms": self.alarm.fired,
            **history,
        }

    def _say(self, message: str) -> None:
        if self.dist.is_main:
            print(f"[rlreason] {message}")

    def log_sample_table(self, batch: RolloutBatch | None, k: int = 8) -> None:
        if batch is None:
            return
        names = sorted(batch.components)
        rows = [
            [self.render(batch.tasks[i]), batch.texts[i], float(batch.rewards[i])]
            + [batch.components[n][i] for n in names]
            for i in range(min(k, len(batch)))
        ]
        self.logger.log_table(
            "samples", ["prompt", "completion", "reward"] + names, rows, self.step
        )
