import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rlreason.model import packed
from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.lora import apply_lora
from rlreason.model.packed import packed_linears
from rlreason.sampling.engine import generate

needs_onednn = pytest.mark.skipif(not packed.available(), reason="PyTorch built without oneDNN")


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(512, 640), nn.GELU(), nn.Linear(640, 16), nn.Linear(16, 512))


@needs_onednn
def test_large_linears_are_packed_and_match_f_linear_small_ones_are_left_alone():
    net = _net()
    x = torch.randn(5, 7, 512)
    with torch.no_grad():
        expected = net(x)
        with packed_linears(net) as count:
            assert count == 1  # only 512x640 is large enough
            assert "forward" in net[0].__dict__ and "forward" not in net[2].__dict__
            got = net(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not any("forward" in m.__dict__ for m in net.modules())


@needs_onednn
def test_modules_are_restored_when_the_block_raises():
    net = _net()
    with pytest.raises(KeyError), packed_linears(net):
        raise KeyError("boom")
    assert not any("forward" in m.__dict__ for m in net.modules())


@needs_onednn
def test_grad_mode_inside_the_block_falls_back_to_f_linear_so_gradients_flow():
    net = _net()
    x = torch.randn(3, 512)
    net(x).sum().backward()
    expected = net[0].weight.grad.clone()
    net.zero_grad()
    with packed_linears(net):
        out = net(x)
        assert out.requires_grad
        out.sum().backward()
    torch.testing.assert_close(net[0].weight.grad, expected)


@needs_onednn
def test_a_weight_changed_between_blocks_is_never_served_stale():
    net = _net()
    x = torch.randn(4, 512)
    with torch.no_grad():
        with packed_linears(net):
            before = net[0](x)
        net[0].weight.data.mul_(2.0)  # `.data` writes do not bump the version counter
        with packed_linears(net):
            after = net[0](x)
        expected = F.linear(x, net[0].weight, net[0].bias)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(after, before)


@needs_onednn
def test_nested_blocks_do_not_repack_and_the_outer_one_still_restores():
    net = _net()
    with packed_linears(net) as outer:
        with packed_linears(net) as inner:
            assert (outer, inner) == (1, 0)
        assert "forward" in net[0].__dict__
    assert "forward" not in net[0].__dict__


def test_bf16_weights_are_not_packed():
    net = _net().to(torch.bfloat16)
    with packed_linears(net) as count:
        assert count == 0


@needs_onednn
@pytest.mark.parametrize("flavour", ["gpt2", "llama"])
def test_generate_with_packed_weights_gives_the_greedy_tokens_of_the_plain_model(flavour):
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=300,
        n_layer=2,
        n_head=8,
        d_model=512,
        max_seq_len=64,
        flavour=flavour,
        init_std=0.05,
    )
    model = GPT(cfg).eval()
    if flavour == "llama":
        apply_lora(model, rank=4)  # the frozen base gets packed under the adapter
    prompts = [[1, 2, 3, 4, 5], [9, 8, 7]]
    kw = dict(n=2, max_new_tokens=12, temperature=0.0, seed=0)
    plain = generate(model, prompts, pack_weights=False, **kw)
    fast = generate(model, prompts, pack_weights=True, **kw)
    assert fast.completion_ids == plain.completion_ids
    torch.testing.assert_close(fast.logprobs, plain.logprobs, atol=1e-4, rtol=1e-4)
    assert not any("forward" in m.__dict__ for m in model.modules())
