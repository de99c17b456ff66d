"""Wiring of the RL step: each configured behaviour is checked where the trainer composes it.

A tiny random GPT and a scripted scorer (rewards with spread chosen per task) drive the real
Trainer, so a one-line break in how the stages are joined fails a test here even when every
stage is correct on its own: old log-probs across epochs, the LoRA reference, dynamic sampling,
truncation masking and the sampler's recorded log-probs.
"""

import copy
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import rlreason.rl.trainer as trainer_mod
import rlreason.rl.update as update_mod
from rlreason.config import Config
from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.lora import apply_lora
from rlreason.model.tokenizer import CharTokenizer
from rlreason.rl.advantages import get_estimator
from rlreason.rl.logprobs import pack, token_logprobs
from rlreason.rl.trainer import Trainer
from rlreason.rl.update import prepare
from rlreason.sampling.engine import generate
from rlreason.tracking import NullLogger


def task(i: int, flat: bool = False):
    return SimpleNamespace(prompt=f"{i % 10}+{i % 7}=", answer=None, meta={"flat": flat, "i": i})


class ScriptedScorer:
    """Reward 0.5 for every sample of a flat task; otherwise a spread from the text's chars."""

    answer_key = None

    def __call__(self, texts, tasks):
        total = [
            0.5 if t.meta["flat"] else (sum(map(ord, x)) % 5) / 4 for x, t in zip(texts, tasks)
        ]
        n = len(texts)
        return SimpleNamespace(
            total=total,
            components={"scripted": total},
            correct=[r > 0.6 for r in total],
            format_ok=[True] * n,
            answers=[None] * n,
            has_reasoning=[False] * n,
            metrics={},
        )


def make_trainer(tmp_path, tasks=None, lora=False, **algo) -> Trainer:
    torch.manual_seed(0)
    tok = CharTokenizer()
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=32, max_seq_len=64)
    )
    if lora:
        apply_lora(model, rank=4, alpha=8.0)
    cfg = Config()
    cfg.sampling.max_new_tokens = 6
    cfg.train.steps, cfg.train.prompts_per_step, cfg.train.progress = 4, 2, False
    cfg.algo.group_size = 4
    cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.min_lr = 5e-2, 0, 5e-2
    cfg.eval.n_problems = 0
    for k, v in algo.items():
        setattr(cfg.algo, k, v)
    tasks = tasks or [task(i) for i in range(16)]
    reference = None if lora else copy.deepcopy(model).requires_grad_(False)
    value_head = None
    if cfg.algo.advantage == "gae":
        from rlreason.rl.value import ValueHead

        value_head = ValueHead(32)
    teacher = None
    if get_estimator(cfg.algo.advantage).needs_teacher:  # a second GPT of another seed
        torch.manual_seed(1)
        teacher = GPT(model.config).requires_grad_(False)
    return Trainer(
        cfg,
        model,
        tok,
        tasks,
        [],
        lambda t: t.prompt,
        ScriptedScorer(),
        [],
        Path(tmp_path),
        NullLogger(),
        reference=reference,
        value_head=value_head,
        teacher=teacher,
    )


def spy_total_loss(monkeypatch) -> list[dict]:
    """Record every total_loss call's logp and old_logp (detached)."""
    calls, real = [], update_mod.total_loss

    def spy(logp, old_logp, adv, mask, norm, settings, **kw):
        calls.append(
            {
                "logp": logp.detach().clone(),
                "old": old_logp.detach().clone(),
                "mask": mask.clone(),
                "settings": settings,
            }
        )
        return real(logp, old_logp, adv, mask, norm, settings, **kw)

    monkeypatch.setattr(update_mod, "total_loss", spy)
    return calls


def test_epoch_two_uses_the_old_log_probs_of_the_rollout_policy_not_the_live_ones(
    tmp_path, monkeypatch
):
    trainer = make_trainer(tmp_path, epochs=2)
    calls = spy_total_loss(monkeypatch)
    metrics = trainer.train_step(1)
    assert len(calls) == 2  # one micro-batch per epoch
    first, second = calls
    valid = second["mask"] > 0
    # both epochs compare against the same pre-update log-probs (rows come in another order)...
    old1 = first["old"][first["mask"] > 0].sort().values
    assert torch.allclose(old1, second["old"][valid].sort().values)
    # ...and after epoch 1's optimizer step the live policy has moved away from them
    assert (second["logp"] - second["old"])[valid].abs().max() > 1e-3
    assert metrics["policy/approx_kl"] > 1e-6  # the ratio is not identically 1


def test_under_lora_the_kl_reference_is_the_base_model_with_adapters_off(tmp_path):
    trainer = make_trainer(tmp_path, lora=True, log_kl=True)
    base = copy.deepcopy(trainer.model)
    for name, p in trainer.model.named_parameters():
        if "lora_B" in name or name.endswith(".B"):
            torch.nn.init.normal_(p, std=0.5)  # adapters that change the policy
    batch, _ = trainer.collect(1)
    batch.adv = torch.zeros(len(batch))
    prep = prepare(trainer.policy, batch, trainer.cfg.algo, trainer.fwd)
    packed = pack(batch.prompt_ids, batch.tokens, batch.mask, trainer.tokenizer.pad_id)

    def logp_of(model):
        from rlreason.model.lora import disable_adapters

        with torch.no_grad(), disable_adapters(model):
            return token_logprobs(model, packed)[0] * batch.mask

    with torch.no_grad():
        live = token_logprobs(trainer.model, packed)[0] * batch.mask
    reference = logp_of(base)  # adapters disabled on an independent copy: the base policy
    T = prep.ref_logp.shape[1]
    assert torch.allclose(prep.ref_logp, reference[:, :T], atol=1e-5)
    assert (prep.ref_logp - live[:, :T]).abs().max() > 1e-3  # adapters matter, so KL > 0
    metrics = trainer.train_step(2)
    assert metrics["policy/kl"] > 0


def spread_in(tasks):
    return [t for t in tasks if not t.meta["flat"]]


def test_dynamic_sampling_trains_on_every_kept_group_of_every_round(tmp_path):
    # tasks alternate flat / spread: each round keeps 2 of its 4 groups
    tasks = [task(i, flat=i % 2 == 0) for i in range(32)]
    trainer = make_trainer(tmp_path, tasks, dynamic_sampling=True, max_refill_rounds=2)
    trainer.cfg.train.prompts_per_step = 4
    twin = make_trainer(tmp_path, tasks)  # the same seeded task order, three rounds of 4
    drawn = [t for _ in range(3) for t in twin.next_tasks(4)]
    spread = [t.meta["i"] for t in drawn if not t.meta["flat"]]
    rounds = next(r for r in range(3) if len(spread_in(drawn[: 4 * (r + 1)])) >= 4)
    metrics = trainer.train_step(1)
    batch = trainer.last_batch
    G = trainer.cfg.algo.group_size
    assert metrics["group/kept_groups"] == 4 and metrics["group/refill_rounds"] == rounds > 0
    assert len(batch) == 4 * G  # min(kept, prompts_per_step) * G rows trained on
    kept = [batch.tasks[g * G].meta["i"] for g in range(4)]
    assert kept == spread[:4]  # every round's spread groups, in order
    assert all(not t.meta["flat"] for t in batch.tasks)
    assert metrics["train/optimizer_steps"] == 1.0


def test_dynamic_sampling_caps_the_batch_at_prompts_per_step_groups(tmp_path):
    trainer = make_trainer(tmp_path, dynamic_sampling=True, max_refill_rounds=2)
    metrics = trainer.train_step(1)
    assert metrics["group/kept_groups"] == 2 and metrics["group/refill_rounds"] == 0
    assert len(trainer.last_batch) == 2 * trainer.cfg.algo.group_size


def test_mask_truncated_rows_enter_no_loss_and_others_do(tmp_path, monkeypatch):
    real = generate

    def some_truncated(*args, **kwargs):
        r = real(*args, **kwargs)
        reasons = ["length" if i % 3 == 0 else "stop" for i in range(len(r))]
        return replace(r, finish_reasons=reasons)

    monkeypatch.setattr(trainer_mod, "generate", some_truncated)
    for on in (True, False):
        trainer = make_trainer(tmp_path, mask_truncated=on)
        trainer.train_step(1)
        batch = trainer.last_batch
        rows = batch.mask.sum(1)
        for i, reason in enumerate(batch.finish_reasons):
            if reason == "length" and on:
                assert rows[i] == 0, i
            else:
                assert rows[i] > 0, i


@pytest.mark.parametrize("top_k, top_p", [(3, None), (None, 0.5), (5, 0.9)])
def test_the_sampler_records_log_probs_of_the_full_temperature_scaled_distribution(top_k, top_p):
    torch.manual_seed(0)
    tok = CharTokenizer()
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=32, max_seq_len=64)
    ).eval()
    prompts = [tok.encode("12+3="), tok.encode("7-4=")]
    T = 0.7
    r = generate(
        model,
        prompts,
        n=3,
        max_new_tokens=6,
        temperature=T,
        top_k=top_k,
        top_p=top_p,
        seed=1,
        tokenizer=tok,
    )
    packed = pack(r.prompt_ids, r.tokens, r.mask, tok.pad_id)
    with torch.no_grad():
        full = token_logprobs(model, packed, temperature=T)[0]  # log_softmax(logits / T)
    valid = r.mask > 0
    assert torch.allclose(r.logprobs[valid], full[valid].float(), atol=1e-4)
    # a top-k / top-p renormalised value would be larger: the filter discards mass
    assert (full[valid] < -1e-3).any()
