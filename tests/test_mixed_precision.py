"""Mixed precision: fp32 trainable weights and optimizer state, bf16/fp16 compute (CPU autocast)."""

from types import SimpleNamespace

import pytest
import torch

from experiments.build import build_policy
from rlreason.config import LoRAConfig, ModelConfig
from rlreason.model.lora import lora_modules
from rlreason.model.precision import compute_dtype, loss_scaler, mixed_precision
from rlreason.optim import build_adamw
from rlreason.rl.batch import RolloutBatch
from rlreason.rl.update import Forward, Policy, Prepared, update


def tiny(dtype: str, lora: bool):
    torch.manual_seed(0)
    cfg = ModelConfig(
        source="scratch", n_layer=2, n_head=2, d_model=32, max_seq_len=64, dtype=dtype
    )
    return build_policy(cfg, LoRAConfig(enabled=lora, rank=4, alpha=8.0))


def fixed_batch(tok, B=4, T=6) -> RolloutBatch:
    g = torch.Generator().manual_seed(1)
    prompts = [tok.encode(f"Q: {i}+1\nA: ") for i in range(B)]
    return RolloutBatch(
        prompts,
        torch.randint(7, 30, (B, T), generator=g),
        torch.ones(B, T),
        torch.zeros(B, T),
        torch.zeros(B),
        ["eos"] * B,
        [""] * B,
        [None] * B,
        {},
        adv=torch.tensor([1.0, -1.0, 0.5, -0.5]),
    )


ALGO = SimpleNamespace(
    epochs=1,
    minibatches=1,
    aggregation="token_mean",
    clip_low=0.2,
    clip_high=0.2,
    dual_clip=None,
    ratio_level="token",
    kl_coef=0.0,
    kl_kind="k3",
    entropy_coef=0.0,
    value_coef=0.5,
    value_clip=0.2,
)
OPTIM = SimpleNamespace(grad_clip=1.0, warmup_steps=0, clip_after_warmup=False)


def run_updates(model, tok, steps: int, lr: float, scaler=None) -> list[dict]:
    opt = build_adamw(model, lr, 0.0, (0.9, 0.99))
    batch, fwd = fixed_batch(tok), Forward(tok.pad_id, 1.0, 6)
    prep = Prepared(None, None, None, {})
    return [
        update(Policy(model), opt, batch, prep, ALGO, OPTIM, fwd, step=s, seed=s, scaler=scaler)
        for s in range(1, steps + 1)
    ]


def test_bfloat16_stores_lora_weights_in_fp32_and_the_frozen_base_in_bf16():
    model, _ = tiny("bfloat16", lora=True)
    for name, p in model.named_parameters():
        assert p.dtype == (torch.float32 if p.requires_grad else torch.bfloat16), name
    assert sum("lora_" in n for n, p in model.named_parameters() if p.requires_grad) > 0
    assert compute_dtype(model) == torch.bfloat16


def test_200_adamw_steps_at_lr_1e_5_in_bfloat16_move_at_least_99_percent_of_lora_a():
    model, tok = tiny("bfloat16", lora=True)
    before = {n: m.lora_A.weight.detach().clone() for n, m in lora_modules(model)}
    stats = run_updates(model, tok, 200, 1e-5)
    assert all(s["train/skipped_updates"] == 0 for s in stats)
    moved = sum(int((m.lora_A.weight != before[n]).sum()) for n, m in lora_modules(model))
    total = sum(b.numel() for b in before.values())
    assert moved / total >= 0.99, moved / total


def test_pure_bfloat16_lora_weights_lose_most_small_updates_which_fp32_masters_keep():
    """The failure fp32 masters prevent: the same 200 steps with bf16 LoRA weights."""
    model, tok = tiny("bfloat16", lora=True)
    for _, m in lora_modules(model):
        m.lora_A.weight.data = m.lora_A.weight.data.bfloat16()
        m.lora_B.weight.data = m.lora_B.weight.data.bfloat16()
    before = {n: m.lora_A.weight.detach().clone() for n, m in lora_modules(model)}
    run_updates(model, tok, 200, 1e-5)
    moved = sum(int((m.lora_A.weight != before[n]).sum()) for n, m in lora_modules(model))
    assert moved / sum(b.numel() for b in before.values()) < 0.5


def test_full_fine_tuning_in_bfloat16_trains_fp32_weights_and_computes_in_bf16():
    model, tok = tiny("bfloat16", lora=False)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ids = torch.tensor([tok.encode("Q: 1+1\nA: ")])
    assert model(ids).dtype == torch.bfloat16  # autocast: the matmuls ran in bf16
    w = model.blocks[0].attn.q_proj.weight
    before = w.detach().clone()
    run_updates(model, tok, 3, 1e-6)
    assert w.dtype == torch.float32 and bool((w != before).any())


def test_bfloat16_logits_stay_close_to_the_fp32_logits_of_the_same_weights():
    model32, tok = tiny("float32", lora=False)
    model16, _ = tiny("bfloat16", lora=False)
    mixed_precision(model16.requires_grad_(False), torch.bfloat16)  # inference: all frozen
    ids = torch.tensor([tok.encode("Q: 12+30\nA: <think>")])
    a, b = model32(ids).float(), model16(ids).float()
    assert (a - b).abs().max() < 0.05 * a.abs().max()  # bf16 keeps ~3 significant digits


def test_float32_runs_without_autocast_or_loss_scaler():
    model, _ = tiny("float32", lora=True)
    assert model.compute_dtype is None and loss_scaler(model) is None
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_float16_trains_with_a_loss_scaler_that_skips_overflowing_steps_only():
    model, tok = tiny("float16", lora=True)
    scaler = loss_scaler(model)
    assert isinstance(scaler, torch.amp.GradScaler)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**30)  # certain to overflow at first
    before = {n: m.lora_B.weight.detach().clone() for n, m in lora_modules(model)}
    stats = run_updates(model, tok, 30, 1e-3, scaler=scaler)
    assert stats[0]["train/overflow_skips"] == 1 and stats[0]["train/skipped_updates"] == 0
    assert stats[-1]["train/overflow_skips"] == 0 and stats[-1]["train/loss_scale"] < 2.0**30
    assert any(bool((m.lora_B.weight != before[n]).any()) for n, m in lora_modules(model))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_sampling_from_a_low_precision_lora_policy_runs_and_keeps_fp32_log_probs(dtype):
    from rlreason.sampling.engine import generate

    model, tok = tiny(dtype, lora=True)
    r = generate(model, [tok.encode("Q: 1+2\nA: ")], n=2, max_new_tokens=5, seed=0, tokenizer=tok)
    assert r.logprobs.dtype == torch.float32 and r.tokens.shape[0] == 2
    assert bool(torch.isfinite(r.logprobs).all())


def test_sampling_a_full_fine_tuning_bf16_policy_keeps_its_kv_cache_in_bf16(monkeypatch):
    from rlreason.model.gpt import KVCache
    from rlreason.sampling.engine import generate

    model, tok = tiny("bfloat16", lora=False)  # fp32 trainable weights, bf16 compute
    dtypes, allocate = [], KVCache.allocate.__func__

    def spy(cls, cfg, batch, max_len, dtype, device):
        dtypes.append(dtype)
        return allocate(cls, cfg, batch, max_len, dtype, device)

    monkeypatch.setattr(KVCache, "allocate", classmethod(spy))
    generate(model, [tok.encode("Q: 1+2\nA: ")], n=2, max_new_tokens=4, seed=0, tokenizer=tok)
    assert dtypes == [torch.bfloat16]
