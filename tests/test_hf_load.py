"""load_pretrained against transformers on tiny random GPT-2 / Llama / Qwen2 / Qwen3 checkpoints."""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from rlreason.model.hf import CheckpointError, load_pretrained  # noqa: E402
from rlreason.model.hf.arch import UnsupportedConfig  # noqa: E402
from rlreason.sampling.engine import generate  # noqa: E402

V = 300
LLAMA_SHAPE = dict(
    vocab_size=V,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=None,
    eos_token_id=None,
    pad_token_id=None,
)
ARCHS = {
    "gpt2": lambda **kw: transformers.GPT2LMHeadModel(
        transformers.GPT2Config(
            **{
                **dict(
                    vocab_size=V,
                    n_embd=32,
                    n_layer=2,
                    n_head=4,
                    n_positions=256,
                    bos_token_id=None,
                    eos_token_id=None,
                ),
                **kw,
            }
        )
    ),
    "llama": lambda **kw: transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**{**LLAMA_SHAPE, "rope_theta": 5000.0, **kw})
    ),
    "qwen2": lambda **kw: transformers.Qwen2ForCausalLM(
        transformers.Qwen2Config(**{**LLAMA_SHAPE, "rope_theta": 1e6, **kw})
    ),
    "qwen3": lambda **kw: transformers.Qwen3ForCausalLM(
        transformers.Qwen3Config(**{**LLAMA_SHAPE, "head_dim": 16, **kw})
    ),
}


def tiny_hf_model(arch: str, seed: int = 0, **config):
    """A tiny transformers model with EVERY tensor random (biases and norms too), in eval mode."""
    torch.manual_seed(seed)
    model = ARCHS[arch](**config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = "norm" in name or ".ln_" in name
            p.copy_(
                1 + 0.2 * torch.randn_like(p)
                if is_norm and name.endswith("weight")
                else 0.2 * torch.randn_like(p)
            )
    return model.eval()


def save_tiny(arch: str, directory, shards: bool = False, seed: int = 0, **config):
    model = tiny_hf_model(arch, seed, **config)
    model.save_pretrained(directory, max_shard_size="20KB" if shards else "1GB")
    return model


def random_ids(B=2, T=12, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


CASES = [
    ("gpt2", {}),
    ("gpt2", {"tie_word_embeddings": False}),
    ("llama", {}),
    ("llama", {"tie_word_embeddings": True}),
    ("qwen2", {}),
    ("qwen3", {}),
    (
        "llama",
        {
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            }
        },
    ),
    ("llama", {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
]


@pytest.mark.parametrize("arch,config", CASES, ids=lambda c: str(c))
def test_logits_equal_transformers_in_fp32(tmp_path, arch, config):
    hf = save_tiny(arch, tmp_path, **config)
    model, tok = load_pretrained(tmp_path, with_tokenizer=False)
    ids = random_ids()
    with torch.no_grad():
        expected = hf(ids).logits
        got = model(ids)
    assert tok is None and got.dtype == torch.float32
    assert expected.abs().max() > 0.5  # the comparison is not between near-zero logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2", "qwen3"])
def test_sharded_checkpoint_loads_shard_by_shard_to_the_same_logits(tmp_path, arch):
    hf = save_tiny(arch, tmp_path, shards=True)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    model, _ = load_pretrained(tmp_path, with_tokenizer=False)
    ids = random_ids(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)


def test_shards_are_opened_one_at_a_time_and_each_once(tmp_path, monkeypatch):
    import safetensors

    save_tiny("qwen3", tmp_path, shards=True)
    real, opened, live = safetensors.safe_open, [], []

    class Tracked:
        def __init__(self, path, *args, **kwargs):
            self.inner, self.path = real(path, *args, **kwargs), path

        def __enter__(self):
            live.append(self.path)
            opened.append((self.path, len(live)))
            return self.inner.__enter__()

        def __exit__(self, *exc):
            live.remove(self.path)
            return self.inner.__exit__(*exc)

    monkeypatch.setattr(safetensors, "safe_open", Tracked)
    load_pretrained(tmp_path, with_tokenizer=False)
    shards = sorted(str(p) for p in tmp_path.glob("model-*.safetensors"))
    assert sorted(path for path, _ in opened) == shards
    assert max(depth for _, depth in opened) == 1


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2", "qwen3"])
def test_greedy_generation_matches_transformers_for_20_tokens(tmp_path, arch):
    hf = save_tiny(arch, tmp_path)
    model, _ = load_pretrained(tmp_path, with_tokenizer=False)
    prompts = [random_ids(1, 7, seed=5)[0].tolist(), random_ids(1, 7, seed=6)[0].tolist()]
    ours = generate(model, prompts, n=1, max_new_tokens=20, temperature=0, pad_id=0)
    theirs = hf.generate(
        torch.tensor(prompts),
        attention_mask=torch.ones(2, 7, dtype=torch.long),
        do_sample=False,
        max_new_tokens=20,
        min_new_tokens=20,
        pad_token_id=0,
    )
    assert [len(c) for c in ours.completion_ids] == [20, 20]
    assert ours.completion_ids == theirs[:, 7:].tolist()


def test_bf16_loading_keeps_parameters_in_bf16_and_rope_in_fp32(tmp_path):
    hf = save_tiny("qwen2", tmp_path)
    model, _ = load_pretrained(tmp_path, dtype=torch.bfloat16, with_tokenizer=False)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.inv_freq.dtype == torch.float32
    ids = random_ids()
    with torch.no_grad():
        diff = (model(ids).float() - hf(ids).logits).abs().max()
    assert diff < 0.25  # bf16 rounding only; a wrong mapping differs by whole logits


def test_transformers_4_style_rope_fields_give_the_same_logits(tmp_path):
    scaling = {
        "rope_type": "llama3",
        "factor": 4.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8,
    }
    hf = save_tiny("llama", tmp_path, rope_theta=2e4, rope_scaling=dict(scaling))
    config = json.loads((tmp_path / "config.json").read_text())
    del config["rope_parameters"]
    config.update(rope_theta=2e4, rope_scaling=scaling, torch_dtype="float32")
    (tmp_path / "config.json").write_text(json.dumps(config))
    model, _ = load_pretrained(tmp_path, with_tokenizer=False)
    ids = random_ids()
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)


def test_auto_dtype_follows_config_json(tmp_path):
    save_tiny("llama", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["dtype"] = "bfloat16"
    (tmp_path / "config.json").write_text(json.dumps(config))
    model, _ = load_pretrained(tmp_path, with_tokenizer=False)
    assert model.tok_emb.weight.dtype == torch.bfloat16


def test_tied_embeddings_share_one_tensor_after_loading(tmp_path):
    save_tiny("qwen3", tmp_path, tie_word_embeddings=True)
    model, _ = load_pretrained(tmp_path, with_tokenizer=False)
    assert model.lm_head.weight is model.tok_emb.weight


# --- errors -------------------------------------------------------------------------------------


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        load_pretrained(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json"):
        load_pretrained(tmp_path)


def test_missing_tokenizer_json_is_named(tmp_path):
    save_tiny("llama", tmp_path)
    with pytest.raises(CheckpointError, match="tokenizer.json.*with_tokenizer=False"):
        load_pretrained(tmp_path)


def test_missing_shard_of_a_sharded_checkpoint_is_named(tmp_path):
    save_tiny("llama", tmp_path, shards=True)
    victim = sorted(tmp_path.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        load_pretrained(tmp_path, with_tokenizer=False)


def test_shape_mismatch_names_the_tensor(tmp_path):
    save_tiny("qwen2", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.layers\.0\.mlp\.\w+_proj\.weight"):
        load_pretrained(tmp_path, with_tokenizer=False)


def test_checkpoint_missing_a_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    save_tiny("qwen3", tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["model.layers.1.self_attn.k_norm.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.self_attn\.k_norm\.weight"):
        load_pretrained(tmp_path, with_tokenizer=False)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("model_type", "mistral", "model_type='mistral'"),
        (
            "rope_parameters",
            {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4},
            "rope_parameters.rope_type='yarn'",
        ),
        ("attention_bias", True, "attention_bias=True"),
        ("hidden_act", "gelu", "hidden_act='gelu'"),
    ],
)
def test_unsupported_config_fields_are_named(tmp_path, field, value, message):
    save_tiny("llama", tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[field] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedConfig, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_pretrained(tmp_path, with_tokenizer=False)
