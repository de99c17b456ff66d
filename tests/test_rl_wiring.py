"""Wiring invariants of one RL step: what each stage hands the next, on a tiny random GPT.

A scripted scorer gives every group reward spread (a function of the completion text), so the
update has a signal; a second one makes chosen groups flat to exercise dynamic sampling.
"""

from dataclasses import dataclass

import pytest
import torch

from experiments.train import build_trainer
from rlreason.rl.update import _no_grad_pass, prepare
from tests.test_rl_trainer import tiny_cfg


@dataclass
class Scored:
    total: list[float]
    components: dict[str, list[float]]
    correct: list[bool]
    metrics: dict[str, float]


def text_reward(text: str) -> float:
    """Deterministic, varied across samples: almost every group of 4 has spread."""
    return (sum(ord(c) for c in text) % 11) / 10.0


class SpreadScorer:
    """Reward from the completion text; in call k, the groups in `flat[k]` get a constant reward."""

    answer_key = None

    def __init__(self, flat=(), G=4):
        self.flat, self.G, self.calls = list(flat), G, []

    def __call__(self, texts, tasks):
        flat = self.flat[len(self.calls)] if len(self.calls) < len(self.flat) else ()
        total = [0.5 if i // self.G in flat else text_reward(x) for i, x in enumerate(texts)]
        self.calls.append(total)
        mean = sum(total) / len(total)
        return Scored(
            total,
            {"scripted": total},
            [r > 0.5 for r in total],
            {"reward/total/mean": mean, "accuracy": 0.0},
        )


def trainer_with(tmp_path, scorer=None, **over):
    cfg = tiny_cfg(tmp_path, **{"train.steps": 2, "optim.warmup_steps": 0, **over})
    trainer = build_trainer(cfg)
    trainer.scorer = scorer or SpreadScorer()
    return trainer


def params(model):
    return [p.detach().clone() for p in model.parameters()]


# ----------------------------------------------------------------------------- epochs and clipping


def test_epoch_two_measures_the_ratio_against_the_rollout_policy_and_clips(tmp_path):
    trainer = trainer_with(tmp_path, **{"algo.epochs": 2, "optim.lr": 0.3})
    m = trainer.train_step(1)
    # epoch 1 is exactly on-policy (ratio 1); epoch 2 follows a big step, so it must clip
    assert m["policy/clipfrac_low"] + m["policy/clipfrac_high"] > 0
    assert abs(m["policy/ratio_mean"] - 1.0) > 1e-4


# ----------------------------------------------------------------------------- LoRA reference


def test_under_lora_the_kl_reference_is_the_model_with_adapters_off(tmp_path):
    from rlreason.model.lora import disable_adapters

    trainer = trainer_with(
        tmp_path,
        **{"lora.enabled": True, "optim.lr": 0.1, "algo.kl_coef": 0.01, "algo.log_kl": True},
    )
    assert trainer.reference is None
    base = params(trainer.model)
    trainer.train_step(1)
    m = trainer.train_step(2)
    assert m["policy/kl"] > 1e-6  # adapters moved the policy away from the base
    batch = trainer.last_batch
    prep = prepare(trainer.policy, batch, trainer.cfg.algo, trainer.fwd)
    with disable_adapters(trainer.model):
        off = _no_grad_pass(trainer.model, batch, trainer.fwd)[0]  # (B, T)
    live = _no_grad_pass(trainer.model, batch, trainer.fwd)[0]  # (B, T)
    torch.testing.assert_close(prep.ref_logp, off)
    assert not torch.allclose(prep.ref_logp, live, atol=1e-4)
    changed = [not torch.equal(a, b) for a, b in zip(base, trainer.model.parameters())]
    assert any(changed)


# ----------------------------------------------------------------------------- dynamic sampling


def test_dynamic_sampling_trains_on_the_first_prompts_per_step_kept_groups(tmp_path, monkeypatch):
    import rlreason.rl.trainer as trainer_mod

    P, G = 3, 4
    scorer = SpreadScorer(flat=[{1}, {0}], G=G)  # round 1 keeps 2 groups, round 2 two more
    trainer = trainer_with(
        tmp_path,
        scorer,
        **{"algo.dynamic_sampling": True, "algo.max_refill_rounds": 3, "train.prompts_per_step": P},
    )
    seen = []
    real = trainer_mod.update

    def spy(policy, optimizer, batch, *args, **kwargs):
        seen.append(batch)
        return real(policy, optimizer, batch, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, "update", spy)
    m = trainer.train_step(1)
    groups = [call[i : i + G] for call in scorer.calls for i in range(0, len(call), G)]
    spread = [g for g in groups if max(g) > min(g)]
    n_kept = min(len(spread), P)
    assert len(scorer.calls) == 2 and len(spread) > P  # refilled; more groups than needed
    assert len(seen) == 1 and len(seen[0]) == n_kept * G
    assert m["group/kept_groups"] == n_kept
    got = seen[0].rewards.view(-1, G).tolist()
    assert got == [pytest.approx(g) for g in spread[:n_kept]]


# ----------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("mask_truncated", [True, False])
def test_mask_truncated_zeroes_exactly_the_rows_that_hit_the_length_limit(tmp_path, mask_truncated):
    trainer = trainer_with(
        tmp_path, **{"algo.mask_truncated": mask_truncated, "sampling.max_new_tokens": 4}
    )
    batch, _ = trainer.collect(1)
    truncated = [fr == "length" for fr in batch.finish_reasons]
    assert any(truncated)
    rows = batch.mask.sum(1)  # (B,)
    for i, t in enumerate(truncated):
        assert (rows[i] == 0) == (t and mask_truncated), (i, batch.finish_reasons[i])


# ----------------------------------------------------------------------------- sampler log-probs


def test_sampler_logprobs_are_the_full_temperature_scaled_distribution_under_top_k(tmp_path):
    from rlreason.sampling.engine import generate

    trainer = trainer_with(tmp_path)
    model, T_ = trainer.model.eval(), 0.7
    with torch.no_grad():  # sharpen the scripted logits so top-k cuts off real mass
        model.lm_head.weight.mul_(30.0)
    prompts = [[5, 6, 7], [8, 9]]
    r = generate(model, prompts, n=3, max_new_tokens=6, temperature=T_, top_k=3, seed=0)
    for i, (p, c) in enumerate(zip(r.prompt_ids, r.completion_ids)):
        ids = torch.tensor([p + c])  # (1, Tp + Tc)
        with torch.no_grad():
            logits = model(ids)[0, len(p) - 1 : -1].float()  # (Tc, V)
        full = torch.log_softmax(logits / T_, dim=-1)  # (Tc, V)
        want = full.gather(1, torch.tensor(c)[:, None])[:, 0]  # (Tc,)
        torch.testing.assert_close(r.logprobs[i, : len(c)], want, atol=1e-4, rtol=1e-4)
        top = torch.topk(logits, 3, dim=-1).values  # (Tc, 3)
        renorm = want - torch.logsumexp(top / T_, -1) + torch.logsumexp(logits / T_, -1)
        assert (renorm - want).abs().max() > 1e-2  # the test can tell the two apart
