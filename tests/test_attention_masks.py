"""Attention without copies or dense masks equals the masked / copied reference."""

import pytest
import torch

from rlreason.model.attention import additive_mask, decode_attention, sdpa
from rlreason.model.gpt import GPT
from rlreason.sampling.kv import split_attention

from .conftest import tiny_config


@pytest.mark.parametrize("heads, kv_heads", [(4, 4), (4, 2), (6, 1)])
def test_shared_prefix_attention_equals_attention_over_a_copied_prefix(heads, kv_heads):
    g = torch.Generator().manual_seed(0)
    P, n, Lp, Ss, D = 3, 4, 7, 5, 8
    B = P * n
    q = torch.randn(B, heads, 1, D, generator=g)
    pk, pv = (torch.randn(P, kv_heads, Lp, D, generator=g) for _ in range(2))
    sk, sv = (torch.randn(B, kv_heads, Ss, D, generator=g) for _ in range(2))
    pmask = torch.ones(P, Lp, dtype=torch.bool)
    pmask[0, :3], pmask[2, :6] = False, False  # left padding
    smask = torch.arange(Ss)[None, :] <= torch.tensor([2] * B)[:, None]  # 3 suffix slots so far
    pbias = additive_mask(pmask)[:, None, None, :]  # (P, 1, 1, Lp)
    sbias = additive_mask(smask)[:, None, None, :]  # (B, 1, 1, Ss)
    shared = split_attention(q, pk, pv, pbias, sk, sv, sbias, n)
    k = torch.cat([pk.repeat_interleave(n, 0), sk], 2)  # (B, Hkv, Lp + Ss, D) the copy
    v = torch.cat([pv.repeat_interleave(n, 0), sv], 2)
    bias = torch.cat([pbias.repeat_interleave(n, 0), sbias], -1)
    torch.testing.assert_close(shared, decode_attention(q, k, v, bias), atol=1e-5, rtol=1e-5)


def padded_batch(side: str, vocab: int):
    g = torch.Generator().manual_seed(1)
    lens = [9, 4, 12, 1]
    T = 12
    ids = torch.randint(0, vocab, (len(lens), T), generator=g)
    key_mask = torch.zeros(len(lens), T, dtype=torch.bool)
    for b, k in enumerate(lens):
        if side == "left":
            key_mask[b, T - k :] = True
        elif side == "right":
            key_mask[b, :k] = True
        else:  # left-padded prompt + right-padded completion, as rl/logprobs.py packs
            key_mask[b, 2 : 2 + k - 1 if k > 1 else 3] = True
    positions = (key_mask.long().cumsum(1) - 1).clamp(min=0)
    return ids, key_mask, positions


@pytest.mark.parametrize("side", ["left", "right", "both"])
@pytest.mark.parametrize("flavour, kw", [("gpt2", {}), ("llama", {}), ("llama", dict(n_kv_head=1))])
def test_mask_free_compact_attention_equals_the_dense_mask_on_real_tokens(side, flavour, kw):
    torch.manual_seed(0)
    model = GPT(tiny_config(flavour, **kw)).eval()
    ids, key_mask, positions = padded_batch(side, model.config.vocab_size)
    ref = model(ids, positions=positions, key_mask=key_mask)  # (B, T, V)
    model.attn_padding = "compact"
    out = model(ids, positions=positions, key_mask=key_mask)
    torch.testing.assert_close(out[key_mask], ref[key_mask], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


def test_compact_attention_gives_the_same_gradients_on_real_tokens():
    torch.manual_seed(0)
    model = GPT(tiny_config("llama")).train()
    ids, key_mask, positions = padded_batch("both", model.config.vocab_size)
    grads = []
    for mode in ("mask", "compact"):
        model.attn_padding = mode
        model.zero_grad()
        model(ids, positions=positions, key_mask=key_mask)[key_mask].logsumexp(-1).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_right_padded_batch_needs_no_mask_at_all(tiny_model):
    ids, key_mask, positions = padded_batch("right", tiny_model.config.vocab_size)
    ref = tiny_model(ids, positions=positions, key_mask=key_mask)
    plain = tiny_model(ids)  # causal only: real tokens come first in every row
    torch.testing.assert_close(plain[key_mask], ref[key_mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mask", [False, True])
def test_sdpa_helper_equals_sdpa_on_expanded_heads(mask):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 6, 5, 8, generator=g)
    k, v = (torch.randn(2, 2, 5, 8, generator=g) for _ in range(2))
    m = torch.rand(2, 1, 5, 5, generator=g) > 0.3 if mask else None
    if m is not None:
        m |= torch.eye(5, dtype=torch.bool)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), attn_mask=m, is_causal=not mask
    )
    torch.testing.assert_close(sdpa(q, k, v, m, is_causal=not mask), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_compact_attention_equals_the_dense_mask_on_cuda(dtype):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    model = GPT(tiny_config("llama")).cuda().to(dtype).eval()
    ids, key_mask, positions = (x.cuda() for x in padded_batch("both", model.config.vocab_size))
    ref = model(ids, positions=positions, key_mask=key_mask)
    model.attn_padding = "compact"
    out = model(ids, positions=positions, key_mask=key_mask)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(out[key_mask].float(), ref[key_mask].float(), atol=tol, rtol=tol)
