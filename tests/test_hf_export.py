"""PEFT adapter export/import and merged HF export, checked against peft and transformers."""

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from rlreason.model.gpt import GPT, GPTConfig  # noqa: E402
from rlreason.model.hf import CheckpointError, load_pretrained, save_merged  # noqa: E402
from rlreason.model.hf.peft import save_peft_adapter  # noqa: E402
from rlreason.model.lora import apply_lora, lora_modules  # noqa: E402
from rlreason.sampling.engine import generate  # noqa: E402
from tests.test_hf_load import random_ids, save_tiny  # noqa: E402

ARCHS = ["gpt2", "llama", "qwen2", "qwen3"]


def lora_model(
    directory,
    targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    rslora=False,
    seed=0,
):
    """Our model from `directory` with LoRA whose B is random (so the adapter changes logits)."""
    model, _ = load_pretrained(directory, with_tokenizer=False)
    apply_lora(model, rank=4, alpha=8.0, targets=targets, rslora=rslora)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in lora_modules(model):
            m.lora_B.weight.copy_(0.3 * torch.randn(m.lora_B.weight.shape, generator=gen))
    return model


def logits(model, ids):
    with torch.no_grad():
        out = model(ids)
    return out if isinstance(out, torch.Tensor) else out.logits


def peft_logits(base_dir, adapter_dir, ids):
    base = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
    return logits(peft.PeftModel.from_pretrained(base, adapter_dir).eval(), ids)


@pytest.mark.parametrize("arch", ARCHS)
def test_peft_export_gives_the_same_logits_in_peft(tmp_path, arch):
    hf = save_tiny(arch, tmp_path / "base")
    model = lora_model(tmp_path / "base", rslora=arch == "qwen3")
    save_peft_adapter(model, tmp_path / "adapter")
    ids = random_ids()
    ours = logits(model, ids)
    assert (ours - logits(hf, ids)).abs().max() > 0.1  # the adapter matters
    torch.testing.assert_close(
        peft_logits(tmp_path / "base", tmp_path / "adapter", ids), ours, atol=1e-4, rtol=1e-4
    )


def test_peft_export_uses_peft_key_layout_and_config_fields(tmp_path):
    from safetensors import safe_open

    save_tiny("llama", tmp_path / "base")
    model = lora_model(tmp_path / "base", targets=("q_proj", "blocks.1.mlp.down_proj"))
    save_peft_adapter(model, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 4, 8.0)
    assert config["target_modules"] == ["model.layers.1.mlp.down_proj", "self_attn.q_proj"]
    assert config["base_model_name_or_path"] == str((tmp_path / "base").resolve())
    with safe_open(str(tmp_path / "adapter" / "adapter_model.safetensors"), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    assert shapes["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] == (4, 32)
    assert shapes["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"] == (32, 4)
    assert len(shapes) == 2 * 3


def test_gpt2_query_only_lora_exports_as_a_zero_padded_c_attn_adapter(tmp_path):
    save_tiny("gpt2", tmp_path / "base")
    model = lora_model(tmp_path / "base", targets=("q_proj", "blocks.0.mlp.up_proj"))
    save_peft_adapter(model, tmp_path / "adapter")
    ids = random_ids(seed=4)
    torch.testing.assert_close(
        peft_logits(tmp_path / "base", tmp_path / "adapter", ids),
        logits(model, ids),
        atol=1e-4,
        rtol=1e-4,
    )


@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_adapter_directory_loads_back_on_its_base_with_the_same_logits(tmp_path, arch):
    save_tiny(arch, tmp_path / "base")
    model = lora_model(tmp_path / "base", rslora=True)
    save_peft_adapter(model, tmp_path / "adapter")
    back, _ = load_pretrained(tmp_path / "adapter", with_tokenizer=False)  # base from config
    ids = random_ids(seed=7)
    torch.testing.assert_close(logits(back, ids), logits(model, ids), atol=1e-5, rtol=1e-5)
    trainable = {n for n, p in back.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_adapter_trained_in_peft_imports_with_the_same_logits(tmp_path, arch):
    save_tiny(arch, tmp_path / "base")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    targets = ["c_attn", "c_fc"] if arch == "gpt2" else ["q_proj", "v_proj", "up_proj"]
    pm = peft.get_peft_model(hf, peft.LoraConfig(r=3, lora_alpha=5, target_modules=targets))
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.3)
    pm.save_pretrained(tmp_path / "adapter")
    model, _ = load_pretrained(
        tmp_path / "base", adapter=tmp_path / "adapter", with_tokenizer=False
    )
    ids = random_ids(seed=8)
    torch.testing.assert_close(logits(model, ids), logits(pm.eval(), ids), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_export_loads_in_transformers_with_the_same_logits(tmp_path, arch):
    save_tiny(arch, tmp_path / "base")
    model = lora_model(tmp_path / "base")
    ids = random_ids(seed=9)
    before = logits(model, ids)
    save_merged(model, tmp_path / "merged", max_shard_size=40_000)
    assert len(list((tmp_path / "merged").glob("model-*-of-*.safetensors"))) > 1
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    torch.testing.assert_close(logits(merged, ids), before, atol=1e-4, rtol=1e-4)
    assert not any(m.merged for _, m in lora_modules(model))  # live model untouched
    torch.testing.assert_close(logits(model, ids), before, atol=0, rtol=0)


def test_natively_built_qwen2_style_model_exports_to_transformers(tmp_path):
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=50,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        d_model=32,
        qkv_bias=True,
        rope_theta=1e5,
        max_seq_len=64,
    )
    model = GPT(cfg).eval()
    with torch.no_grad():
        for _, m in model.named_modules():
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.2)
    save_merged(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2"
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(logits(hf, ids), logits(model, ids), atol=1e-4, rtol=1e-4)


def test_unsupported_adapter_fields_and_foreign_modules_are_named(tmp_path):
    save_tiny("llama", tmp_path / "base")
    save_peft_adapter(lora_model(tmp_path / "base"), tmp_path / "adapter")
    config_path = tmp_path / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(CheckpointError, match="use_dora"):
        load_pretrained(tmp_path / "base", adapter=tmp_path / "adapter", with_tokenizer=False)
    config_path.write_text(json.dumps({**config, "base_model_name_or_path": "org/remote-model"}))
    with pytest.raises(CheckpointError, match="base_model_name_or_path"):
        load_pretrained(tmp_path / "adapter", with_tokenizer=False)


def test_checkpoint_with_tokenizer_loads_both_and_save_merged_carries_the_tokenizer(tmp_path):
    from tests.test_hf_tokenizer import build_tokenizer

    save_tiny("qwen3", tmp_path / "base")
    build_tokenizer(tmp_path / "base")
    model, tok = load_pretrained(tmp_path / "base")
    prompt = tok.apply_chat_template([{"role": "user", "content": "the fox"}], tokenize=True)
    out = generate(model, [prompt], n=2, max_new_tokens=5, temperature=1.0, seed=0, tokenizer=tok)
    assert out.texts == [tok.decode(c) for c in out.completion_ids]
    save_merged(model, tmp_path / "merged", tokenizer=tok)
    again, tok2 = load_pretrained(tmp_path / "merged")
    assert (tok2.eos_id, tok2.pad_id, tok2.chat_template) == (
        tok.eos_id,
        tok.pad_id,
        tok.chat_template,
    )
    ids = random_ids()
    torch.testing.assert_close(logits(again, ids), logits(model, ids), atol=0, rtol=0)


def test_load_adapter_dir_reads_both_adapter_layouts_and_names_them_when_neither(tmp_path):
    from rlreason.model.hf.peft import load_adapter_dir
    from rlreason.model.lora import save_adapter

    save_tiny("llama", tmp_path / "base")
    model = lora_model(tmp_path / "base", targets=("q_proj", "up_proj"))
    save_peft_adapter(model, tmp_path / "peft")
    save_adapter(model, tmp_path / "native")
    ids = random_ids(seed=10)
    for name, layout in (("peft", "peft"), ("native", "rlreason")):
        fresh, _ = load_pretrained(tmp_path / "base", with_tokenizer=False)
        assert load_adapter_dir(fresh, tmp_path / name) == layout
        torch.testing.assert_close(logits(fresh, ids), logits(model, ids), atol=0, rtol=0)
    fresh, _ = load_pretrained(tmp_path / "base", with_tokenizer=False)
    with pytest.raises(CheckpointError, match=r"not an adapter directory.*adapter_config\.json"):
        load_adapter_dir(fresh, tmp_path / "base")
