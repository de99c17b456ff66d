"""`merged_adapters`: the folded model computes what the adapted one does, the base weights come
back bitwise (fp32 and bf16, exceptions included), gradients are untouched; and the trainer's
generation runs merged under `sampling.merge_lora` and unmerged without it."""

import pytest
import torch

import rlreason.rl.trainer as trainer_mod
from rlreason.model.gpt import GPT
from rlreason.model.lora import apply_lora, lora_modules, merged_adapters
from rlreason.model.precision import mixed_precision
from tests.conftest import tiny_config
from tests.test_wiring import make_trainer


def adapted(dtype=torch.float32, mixed=False):
    """A tiny llama GPT with nonzero adapters on every projection (stored in `dtype`, or mixed
    precision: bf16 base, fp32 adapters)."""
    torch.manual_seed(0)
    model = GPT(tiny_config("llama"))
    apply_lora(model, rank=4, alpha=8.0)
    for _, m in lora_modules(model):
        torch.nn.init.normal_(m.lora_B.weight, std=0.05)  # B = 0 would make the fold trivial
    if mixed:
        mixed_precision(model, torch.bfloat16)
    else:
        model.to(dtype)
    return model.eval()


def base_weights(model):
    return {n: m.base.weight.detach().clone() for n, m in lora_modules(model)}


def assert_bitwise(before, model):
    for n, m in lora_modules(model):
        assert torch.equal(m.base.weight, before[n]), n
        assert not m.merged, n


IDS = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]])  # (2, 8)


def test_merged_outputs_equal_the_adapted_outputs_in_fp32_and_weights_come_back_bitwise():
    model = adapted()
    before, want = base_weights(model), model(IDS)
    with merged_adapters(model):
        assert all(m.merged for _, m in lora_modules(model))
        assert any(not torch.equal(m.base.weight, before[n]) for n, m in lora_modules(model))
        got = model(IDS)
    assert (got - want).abs().max() < 1e-5
    assert_bitwise(before, model)
    assert torch.equal(model(IDS), want)  # the unmerged path again, exactly as before


@pytest.mark.parametrize("mixed", [False, True], ids=["bf16", "bf16_base_fp32_adapters"])
def test_merged_outputs_match_within_bf16_rounding_and_bf16_weights_come_back_bitwise(mixed):
    model = adapted(torch.bfloat16, mixed=mixed)
    before, want = base_weights(model), model(IDS).float()
    with merged_adapters(model):
        got = model(IDS).float()
    # logits are O(0.1-1); bf16 keeps 8 significant bits (~0.4% relative) per rounding
    assert (got - want).abs().max() < 0.05 * want.abs().max()
    assert_bitwise(before, model)


def test_an_exception_inside_the_block_still_restores_the_base_weights_bitwise():
    model = adapted(torch.bfloat16)
    before = base_weights(model)
    with pytest.raises(RuntimeError, match="boom"), merged_adapters(model):
        model(IDS)
        raise RuntimeError("boom")
    assert_bitwise(before, model)


def test_under_merged_the_forward_skips_the_adapter_matmuls():
    model = adapted()
    calls = []
    for _, m in lora_modules(model):
        m.lora_A.register_forward_hook(lambda *a: calls.append(1))
    model(IDS)
    n_mods = len(lora_modules(model))  # 7 projections x 2 layers = 14
    assert n_mods == 14 and len(calls) == n_mods
    calls.clear()
    with merged_adapters(model):
        model(IDS)
    assert calls == []


def test_a_backward_after_the_block_gives_the_same_adapter_grads_as_without_it():
    def grads(model):
        model.zero_grad()
        model(IDS).square().mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain, merged = adapted(), adapted()
    want = grads(plain)
    with merged_adapters(merged), torch.no_grad():
        merged(IDS)
    got = grads(merged)
    assert set(got) == set(want) and len(got) == 28  # A and B of 14 adapters
    for n in want:
        assert torch.equal(got[n], want[n]), n


def test_a_model_without_adapters_is_left_alone():
    torch.manual_seed(0)
    model = GPT(tiny_config("gpt2")).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with merged_adapters(model) as m:
        assert m is model
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def spy_merged_state(monkeypatch) -> list[list[bool]]:
    """Record, at every generate call the trainer makes, each LoRALinear's `merged` flag."""
    seen, real = [], trainer_mod.generate

    def spy(model, *args, **kwargs):
        seen.append([m.merged for _, m in lora_modules(model)])
        return real(model, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, "generate", spy)
    return seen


@pytest.mark.parametrize("merge", [True, False])
def test_the_trainer_generates_on_merged_weights_only_under_merge_lora(
    tmp_path, monkeypatch, merge
):
    trainer = make_trainer(tmp_path, lora=True)
    trainer.cfg.sampling.merge_lora = merge
    for _, m in lora_modules(trainer.model):
        torch.nn.init.normal_(m.lora_B.weight, std=0.05)
    seen = spy_merged_state(monkeypatch)
    before = base_weights(trainer.model)
    trainer.collect(1)
    assert len(seen) == 1 and len(seen[0]) == 7  # one call; 7 projections x 1 layer
    assert all(flag is merge for flag in seen[0])
    assert_bitwise(before, trainer.model)


def test_merged_and_unmerged_trainer_generation_sample_the_same_fp32_batch(tmp_path):
    batches = []
    for merge in (True, False):
        trainer = make_trainer(tmp_path, lora=True)
        trainer.cfg.sampling.merge_lora = merge
        torch.manual_seed(3)
        for _, m in lora_modules(trainer.model):
            torch.nn.init.normal_(m.lora_B.weight, std=0.05)
        batches.append(trainer.collect(1)[0])
    a, b = batches
    assert a.texts == b.texts and torch.equal(a.tokens, b.tokens)
    assert (a.sampler_logp - b.sampler_logp).abs().max() < 1e-5
