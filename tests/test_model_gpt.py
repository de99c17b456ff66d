import pytest
import torch

from rlreason.model.gpt import GPT, GPTConfig, KVCache

from .conftest import tiny_config


def test_cached_logits_equal_uncached_logits_token_by_token(tiny_model):
    ids = torch.randint(0, 50, (3, 20))
    full = tiny_model(ids)  # (3, 20, V)
    cache = KVCache.allocate(tiny_model.config, 3, 20, torch.float32, "cpu")
    chunks = [tiny_model(ids[:, :7], kv_cache=cache)]
    for t in range(7, 20):
        chunks.append(tiny_model(ids[:, t : t + 1], kv_cache=cache))
    torch.testing.assert_close(torch.cat(chunks, 1), full, atol=1e-5, rtol=1e-5)


def test_left_padding_changes_neither_attention_nor_positions(tiny_model):
    seq = torch.randint(1, 50, (1, 9))
    alone = tiny_model(seq)[0]
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), seq], 1)
    key_mask = torch.tensor([[False] * 4 + [True] * 9])
    positions = torch.tensor([[0] * 4 + list(range(9))])
    out = tiny_model(padded, positions=positions, key_mask=key_mask)[0, 4:]
    torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(tiny_model(padded, positions=positions, key_mask=key_mask)).all()


def test_right_padding_does_not_change_earlier_logits(tiny_model):
    seq = torch.randint(1, 50, (1, 9))
    padded = torch.cat([seq, torch.zeros(1, 5, dtype=torch.long)], 1)
    torch.testing.assert_close(tiny_model(padded)[0, :9], tiny_model(seq)[0], atol=1e-5, rtol=1e-5)


def test_gpt2_flavour_ties_embeddings_and_llama_does_not_by_default():
    g = GPT(tiny_config("gpt2"))
    ll = GPT(tiny_config("llama"))
    assert g.lm_head.weight is g.tok_emb.weight
    assert ll.lm_head.weight is not ll.tok_emb.weight
    assert g.pos_emb is not None and ll.pos_emb is None


def test_grouped_query_attention_has_fewer_key_value_heads():
    m = GPT(tiny_config("llama", n_kv_head=1))
    attn = m.blocks[0].attn
    assert attn.k_proj.out_features == 8 and attn.q_proj.out_features == 32


def test_bf16_forward_is_finite_and_close_to_fp32(tiny_model):
    ids = torch.randint(0, 50, (2, 12))
    ref = tiny_model(ids)
    low = GPT(tiny_model.config)
    low.load_state_dict(tiny_model.state_dict())
    out = low.to(torch.bfloat16)(ids).float()
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.1


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(flavour="mamba"), "flavour"),
        (dict(flavour="llama", n_head=4, n_kv_head=3), "n_kv_head"),
        (dict(flavour="gpt2", d_model=30, n_head=4), "divisible"),
        (dict(flavour="llama", rope_scaling={"rope_type": "yarn", "factor": 2.0}), "rope"),
    ],
)
def test_invalid_configs_name_the_offending_field(kw, msg):
    with pytest.raises(ValueError, match=msg):
        GPT(GPTConfig(**{**dict(vocab_size=10, n_layer=1, n_head=4, d_model=32), **kw}))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    m = GPT(tiny_config("llama")).train()
    ids = torch.randint(0, 50, (2, 10))
    m(ids).sum().backward()
    ref = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    m.gradient_checkpointing = True
    m(ids).sum().backward()
    for a, p in zip(ref, m.parameters()):
        torch.testing.assert_close(p.grad, a, atol=1e-5, rtol=1e-4)


def test_saved_model_directory_loads_to_identical_logits(tmp_path, tiny_model):
    from rlreason.model.io import load_model, save_model
    from rlreason.model.tokenizer import CharTokenizer

    save_model(tiny_model, CharTokenizer(), tmp_path)
    model, tok = load_model(tmp_path)
    ids = torch.randint(0, 50, (2, 9))
    torch.testing.assert_close(model(ids), tiny_model(ids), atol=0, rtol=0)
    assert tok.vocab_size == CharTokenizer().vocab_size


def test_loading_a_model_with_a_wrong_shape_names_the_tensor(tmp_path, tiny_model):
    import json

    from rlreason.model.io import load_model, save_model

    save_model(tiny_model, None, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["vocab_size"] = 51
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="tok_emb.weight"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_model(tmp_path)


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (8, 2)])
def test_decode_attention_equals_sdpa_on_a_strided_cache_slice_with_a_key_mask(heads, kv_heads):
    from rlreason.model.gpt import additive_mask, decode_attention

    g = torch.Generator().manual_seed(0)
    B, D, S, capacity = 3, 16, 11, 20
    q = torch.randn(B, heads, 1, D, generator=g)
    cache_k = torch.randn(B, kv_heads, capacity, D, generator=g)
    cache_v = torch.randn(B, kv_heads, capacity, D, generator=g)
    k, v = cache_k[:, :, :S], cache_v[:, :, :S]  # strided views, as in decoding
    mask = torch.rand(B, 1, 1, S, generator=g) > 0.4
    mask[..., -1] = True  # its own slot is always visible
    expected = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, enable_gqa=heads != kv_heads
    )
    got = decode_attention(q, k, v, additive_mask(mask))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    masked = decode_attention(q, k, v, additive_mask(mask))
    v2 = v.clone()
    v2[~mask[:, 0, 0, :].unsqueeze(1).expand_as(v2[..., 0])] = 1e6  # masked values cannot leak
    torch.testing.assert_close(decode_attention(q, k, v2, additive_mask(mask)), masked)


def test_kv_cache_expand_repeats_each_row_n_times_prompt_major_into_the_new_capacity():
    cfg = GPTConfig(vocab_size=16, n_layer=2, n_head=2, d_model=8, n_kv_head=1)
    cache = KVCache.allocate(cfg, batch=2, max_len=3, dtype=torch.float32, device="cpu")
    cache.k.copy_(torch.arange(cache.k.numel(), dtype=torch.float32).view_as(cache.k))
    cache.v.copy_(-cache.k)
    cache.length = 2
    out = cache.expand(3, capacity=5)
    assert out.k.shape == (2, 6, 1, 5, 4) and out.length == 2
    for row in range(6):  # rows 0-2 ← prompt 0, 3-5 ← prompt 1
        assert torch.equal(out.k[:, row, :, :2], cache.k[:, row // 3, :, :2])
        assert torch.equal(out.v[:, row, :, :2], cache.v[:, row // 3, :, :2])
