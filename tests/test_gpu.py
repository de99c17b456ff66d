"""GPU smoke tests (`python -m pytest -m gpu`): two GRPO steps on CUDA in bf16 mixed precision.

Each run asserts finite metrics, weights that moved, every rollout tensor on the GPU, and the
dtypes mixed precision promises (fp32 trainable weights, bf16 frozen ones). The entropy bonus
gives a gradient even when every reward of these short runs is 0 (LoRA B starts at zero, so a
zero-advantage step would leave the adapter unchanged). Skipped without CUDA.
"""

import math

import pytest
import torch

from experiments.train import build_trainer
from rlreason.model.lora import lora_modules
from tests.test_rl_trainer import tiny_cfg

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def trainable_snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def two_steps(cfg):
    trainer = build_trainer(cfg)
    before = trainable_snapshot(trainer.model)
    metrics = [trainer.train_step(s) for s in (1, 2)]
    return trainer, before, metrics


def check_run(trainer, before, metrics, lora: bool):
    for m in metrics:
        for k in ("loss/total", "policy/grad_norm", "reward/total/mean"):
            assert math.isfinite(m[k]), (k, m[k])
        assert m["train/skipped_updates"] == 0
    batch = trainer.last_batch
    assert batch.device.type == "cuda" and batch.rewards.device.type == "cuda"
    after = trainable_snapshot(trainer.model)
    moved = [n for n in before if not torch.equal(before[n], after[n])]
    assert moved, "no trainable weight changed in two steps"
    for n, p in trainer.model.named_parameters():
        assert p.device.type == "cuda", n
        assert p.dtype == (torch.float32 if p.requires_grad else torch.bfloat16), n
    if lora:
        assert lora_modules(trainer.model) and all("lora_" in n for n in before)


def gpu_overrides(tmp_path, lora: bool, **extra):
    over = {
        "model.device": "cuda",
        "model.dtype": "bfloat16",
        "lora.enabled": lora,
        "algo.entropy_coef": 0.01,
        "optim.warmup_steps": 0,
        "optim.lr": 1e-3 if lora else 1e-5,
    }
    over.update(extra)
    return tiny_cfg(tmp_path, **over)


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_two_grpo_steps_on_cuda_with_the_tiny_model_in_bf16_mixed_precision(tmp_path, lora):
    trainer, before, metrics = two_steps(gpu_overrides(tmp_path, lora))
    check_run(trainer, before, metrics, lora)


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_two_grpo_steps_on_cuda_with_the_real_smollm2_model(tmp_path, smollm2_dir, lora):
    cfg = gpu_overrides(tmp_path, lora, **{"algo.kl_coef": 0.0 if lora else 0.01})
    cfg.model.source, cfg.model.path = "hf", str(smollm2_dir)
    cfg.model.gradient_checkpointing = True
    cfg.env.template = "r1_zero"
    cfg.sampling.max_new_tokens = 48
    trainer, before, metrics = two_steps(cfg)
    check_run(trainer, before, metrics, lora)
    if not lora:  # KL in the loss: a frozen bf16 reference copy on the GPU
        ref = trainer.reference
        assert ref is not None and {p.dtype for p in ref.parameters()} == {torch.bfloat16}
        assert all(math.isfinite(m["policy/kl"]) for m in metrics)


def test_tf32_is_enabled_for_a_cuda_run(tmp_path):
    build_trainer(gpu_overrides(tmp_path, True))
    assert torch.backends.cuda.matmul.allow_tf32
