import pytest
import torch

from rlreason.model.gpt import GPT
from rlreason.model.lora import (
    LoRALinear,
    apply_lora,
    count_parameters,
    disable_adapters,
    load_adapter,
    merge_lora,
    save_adapter,
    unmerge_lora,
)

from .conftest import tiny_config

TARGETS = ("q_proj", "v_proj", "down_proj")


def lora_model(flavour="llama", **kw):
    torch.manual_seed(0)
    base = GPT(tiny_config(flavour))
    ref = base(IDS).detach()
    return apply_lora(base, rank=4, alpha=8, targets=TARGETS, **kw).eval(), ref


IDS = torch.randint(0, 50, (2, 11), generator=torch.Generator().manual_seed(1))


def randomize_adapters(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.weight.normal_(std=0.5)


def test_lora_with_zero_b_leaves_logits_unchanged():
    model, ref = lora_model()
    torch.testing.assert_close(model(IDS), ref, atol=0, rtol=0)


def test_merged_equals_unmerged_and_unmerge_restores_the_base_weight():
    model, _ = lora_model()
    randomize_adapters(model)
    w0 = model.blocks[0].attn.q_proj.base.weight.clone()
    live = model(IDS)
    merge_lora(model)
    torch.testing.assert_close(model(IDS), live, atol=1e-5, rtol=1e-5)
    unmerge_lora(model)
    torch.testing.assert_close(model.blocks[0].attn.q_proj.base.weight, w0, atol=1e-6, rtol=0)
    torch.testing.assert_close(model(IDS), live, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("merged", [False, True])
def test_disable_adapters_gives_the_base_logits_and_restores_them(merged):
    model, ref = lora_model()
    randomize_adapters(model)
    live = model(IDS)
    if merged:
        merge_lora(model)
    with disable_adapters(model):
        torch.testing.assert_close(model(IDS), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(IDS), live, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(live, ref)


def test_only_adapter_parameters_require_grad_and_count_is_rank_times_in_plus_out():
    model, _ = lora_model("gpt2")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    c = model.config
    per_layer = 4 * (c.d_model + c.d_model) * 2 + 4 * (c.d_ff + c.d_model)  # q, v, down_proj
    count = count_parameters(model)
    assert count.trainable == per_layer * c.n_layer
    assert count.total == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert "Total trainable LoRA parameters" in str(count)


def test_rslora_scales_by_alpha_over_sqrt_rank():
    layer = LoRALinear(torch.nn.Linear(8, 8), rank=4, alpha=8, rslora=True)
    assert layer.scale == pytest.approx(4.0)
    assert LoRALinear(torch.nn.Linear(8, 8), rank=4, alpha=8).scale == pytest.approx(2.0)


def test_adapter_save_and_load_round_trip_through_safetensors(tmp_path):
    model, _ = lora_model()
    randomize_adapters(model)
    out = model(IDS)
    save_adapter(model, tmp_path)
    assert (tmp_path / "adapter.safetensors").is_file() and (tmp_path / "adapter.json").is_file()
    torch.manual_seed(0)
    fresh = GPT(tiny_config("llama"))  # same base weights as lora_model()
    load_adapter(fresh, tmp_path)
    torch.testing.assert_close(fresh.eval()(IDS), out, atol=1e-5, rtol=1e-5)


def test_no_matching_target_and_missing_adapter_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no nn.Linear matches"):
        apply_lora(GPT(tiny_config("gpt2")), targets=("nonexistent",))
    with pytest.raises(FileNotFoundError, match="adapter.json"):
        load_adapter(GPT(tiny_config("gpt2")), tmp_path)


def test_gradients_flow_only_into_adapters():
    model, _ = lora_model()
    model.train()
    model(IDS).logsumexp(-1).sum().backward()
    assert torch.count_nonzero(model.blocks[0].attn.q_proj.lora_A.weight.grad) == 0  # B=0 → dA=0
    assert model.blocks[0].attn.q_proj.lora_B.weight.grad.abs().sum() > 0
    assert model.blocks[0].attn.q_proj.base.weight.grad is None
    assert model.tok_emb.weight.grad is None
