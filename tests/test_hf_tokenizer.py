"""HFTokenizer against transformers' tokenizer on a small BPE tokenizer saved in HF layout."""

import json

import pytest

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("jinja2")

from envs.templates import TEMPLATES  # noqa: E402
from rlreason.model.hf.tokenizer import HFTokenizer  # noqa: E402

SPECIALS = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "<|im_start|>system\nYou are terse.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] | trim }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "12 + 7 = 19; 3 * 4 = 12",
    "<think> reasoning </think> <answer> 42 </answer>",
    "naïve café — déjà vu",
]
TEXTS = [
    "the lazy fox",
    "  leading spaces and\ttabs\n",
    "x = 12 + 7",
    "unseen zebra words!",
    "<|im_start|>user\nhi\n<|im_start|>",
    "naïve café 😀",
    "",
]


def build_tokenizer(directory, pad: bool = True, chat_template: str | None = CHATML):
    """Train a byte-level BPE, wrap it with PreTrainedTokenizerFast and save_pretrained it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 20, trainer)
    extra = {"pad_token": "<|endoftext|>"} if pad else {}
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", unk_token="<unk>", **extra
    )
    if chat_template is not None:
        hf.chat_template = chat_template
    hf.save_pretrained(directory)
    return transformers.AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tok")
    reference = build_tokenizer(directory)
    return HFTokenizer.load(directory), reference


@pytest.mark.parametrize("text", TEXTS)
def test_encode_and_decode_match_transformers(pair, text):
    ours, ref = pair
    ids = ours.encode(text)
    assert ids == ref.encode(text, add_special_tokens=False)
    assert ours.decode(ids) == ref.decode(ids) == text


def test_special_ids_come_from_tokenizer_config(pair):
    ours, ref = pair
    assert ours.eos_id == ref.eos_token_id == ours.token_id("<|im_end|>")
    assert ours.pad_id == ref.pad_token_id == ours.token_id("<|endoftext|>")
    assert ours.vocab_size == len(ref) == 300


def test_decode_drops_eos_and_pad_and_optionally_other_specials(pair):
    ours, _ = pair
    body = ours.encode("the fox")
    ids = [ours.token_id("<|im_start|>")] + body + [ours.eos_id, ours.pad_id, ours.pad_id]
    assert ours.decode(ids) == "<|im_start|>the fox"
    assert ours.encode("the fox", add_eos=True) == body + [ours.eos_id]
    assert ours.decode(ids, skip_special=True) == "the fox"


def test_pad_falls_back_to_eos_when_the_config_has_none(tmp_path):
    build_tokenizer(tmp_path, pad=False)
    tok = HFTokenizer.load(tmp_path)
    assert tok.pad_id == tok.eos_id == tok.token_id("<|im_end|>")


def test_generation_config_eos_ids_are_collected_after_the_tokenizer_eos(tmp_path):
    build_tokenizer(tmp_path)
    endoftext = HFTokenizer.load(tmp_path).token_id("<|endoftext|>")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [endoftext]}))
    tok = HFTokenizer.load(tmp_path)
    assert tok.eos_ids == [tok.token_id("<|im_end|>"), endoftext]


def test_chat_template_render_matches_transformers(pair):
    ours, ref = pair
    messages = [
        {"role": "user", "content": " What is 2+2? "},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "and 3+3?"},
    ]
    for gen in (True, False):
        expected = ref.apply_chat_template(messages, add_generation_prompt=gen, tokenize=False)
        assert ours.apply_chat_template(messages, add_generation_prompt=gen) == expected
    ids = ours.apply_chat_template(messages[:1], tokenize=True)
    assert ids == ref.encode(ours.apply_chat_template(messages[:1]), add_special_tokens=False)


def test_chat_template_reaches_the_chat_prompt_template(pair):
    ours, _ = pair
    text = TEMPLATES["chat"].render("What is 6*7?", ours)
    assert text == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_template_cannot_reach_python_internals(tmp_path):
    evil = "{{ messages.__class__.__mro__[1].__subclasses__() }}"
    build_tokenizer(tmp_path, chat_template=evil)
    import jinja2

    with pytest.raises(jinja2.exceptions.SecurityError):
        HFTokenizer.load(tmp_path).apply_chat_template([{"role": "user", "content": "x"}])


def test_missing_template_and_missing_files_are_clear_errors(tmp_path):
    build_tokenizer(tmp_path, chat_template=None)
    with pytest.raises(ValueError, match="no chat template"):
        HFTokenizer.load(tmp_path).apply_chat_template([{"role": "user", "content": "x"}])
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        HFTokenizer.load(tmp_path / "absent")


def test_decode_drops_every_eos_id(tmp_path):
    build_tokenizer(tmp_path)
    endoftext = HFTokenizer.load(tmp_path).token_id("<|endoftext|>")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [endoftext]}))
    tok = HFTokenizer.load(tmp_path)
    assert tok.decode(tok.encode("the fox") + [endoftext, tok.token_id("<|im_end|>")]) == "the fox"
    assert tok.eos_tokens == ["<|im_end|>", "<|endoftext|>"]


BOS_PROCESSOR = {
    "type": "TemplateProcessing",
    "single": [
        {"SpecialToken": {"id": "<s>", "type_id": 0}},
        {"Sequence": {"id": "A", "type_id": 0}},
    ],
    "pair": [
        {"SpecialToken": {"id": "<s>", "type_id": 0}},
        {"Sequence": {"id": "A", "type_id": 0}},
        {"Sequence": {"id": "B", "type_id": 0}},
    ],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}},
}


def with_bos(directory, processor, **config):
    """The test tokenizer with `<s>` (id 0, the `<unk>` slot renamed) as its BOS token."""
    build_tokenizer(directory, chat_template="{{ bos_token }}" + CHATML)
    tj = json.loads((directory / "tokenizer.json").read_text())
    tj["post_processor"] = processor
    tj["added_tokens"][0]["content"] = "<s>"
    vocab = tj["model"]["vocab"]
    vocab["<s>"] = vocab.pop("<unk>")
    tj["model"]["unk_token"] = None
    (directory / "tokenizer.json").write_text(json.dumps(tj))
    cfg = json.loads((directory / "tokenizer_config.json").read_text())
    cfg.update(bos_token="<s>", unk_token=None, **config)
    (directory / "tokenizer_config.json").write_text(json.dumps(cfg))
    return HFTokenizer.load(directory)


@pytest.mark.parametrize(
    "processor, config, bos",
    [
        (BOS_PROCESSOR, {}, True),  # Llama-3 / Gemma: tokenizer.json prepends the BOS
        (
            BOS_PROCESSOR,
            {"add_bos_token": False},
            True,
        ),  # the post-processor wins, as in transformers
        (
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": False,
                "use_regex": False,
            },
            {},
            False,
        ),
        (
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": False,
                "use_regex": False,
            },
            {"add_bos_token": True},
            False,
        ),
    ],
)
def test_prompts_get_the_bos_token_exactly_when_transformers_adds_it(
    tmp_path, processor, config, bos
):
    ours = with_bos(tmp_path, processor, **config)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert ours.adds_bos is bos and ours.bos_id == ref.bos_token_id == 0
    for text in ("the lazy fox", "x = 12 + 7"):
        assert ours.encode_prompt(text) == ref(text)["input_ids"]
        assert ours.encode_prompt(text) == ([0] if bos else []) + ours.encode(text)
        assert ours.encode(text) == ref.encode(text, add_special_tokens=False)


def test_a_rendered_chat_prompt_that_opens_with_the_bos_token_gets_no_second_one(tmp_path):
    ours = with_bos(tmp_path, BOS_PROCESSOR)
    ref = transformers.AutoTokenizer.from_pretrained(tmp_path)
    text = TEMPLATES["chat"].render("What is 6*7?", ours)
    assert text.startswith("<s><|im_start|>system")
    assert text == ref.apply_chat_template(
        [{"role": "user", "content": "What is 6*7?"}], add_generation_prompt=True, tokenize=False
    )
    ids = ours.encode_prompt(text)
    assert ids[:2] == [0, ours.token_id("<|im_start|>")] and ids.count(0) == 1
    assert ids == ref(text, add_special_tokens=False)["input_ids"]


def test_without_a_post_processor_the_add_bos_token_flag_decides(tmp_path):
    ours = with_bos(tmp_path, None, add_bos_token=True)
    assert ours.adds_bos and ours.encode_prompt("the fox") == [0] + ours.encode("the fox")
    assert not with_bos(tmp_path, None).adds_bos


def test_a_tokenizer_without_a_bos_token_never_adds_one(pair):
    ours, ref = pair
    assert ours.bos_id is None and not ours.adds_bos
    assert ours.encode_prompt("the fox") == ours.encode("the fox") == ref("the fox")["input_ids"]
