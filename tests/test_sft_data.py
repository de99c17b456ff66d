"""SFT data: every bad JSONL line is named by file and line, the completion-only loss mask, the
context-length check, the held-out split and the `sft.*` checks (hand-computed expectations)."""

import json

import pytest

from rlreason.config import Config, ConfigError
from rlreason.lm_train import pad_batch
from rlreason.model.tokenizer import CharTokenizer
from rlreason.sft.checks import validate_sft
from rlreason.sft.data import (
    SFTDataError,
    SFTExample,
    eos_id_of,
    epoch_steps,
    load_examples,
    split_examples,
    tokenize,
    tokenize_examples,
)

GOOD = json.dumps({"prompt": "Q: 1+1=\nA: ", "completion": "<answer>2</answer>"})


def write(tmp_path, lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_kind_of_bad_line_is_named_by_file_and_line_in_one_error(tmp_path):
    path = write(
        tmp_path,
        [
            GOOD,  # 1
            "{not json",  # 2
            "[1, 2]",  # 3
            json.dumps({"prompt": "p"}),  # 4
            json.dumps({"prompt": 7, "completion": "c"}),  # 5
            "",  # 6: blank, skipped
            json.dumps({"prompt": "p", "completion": ""}),  # 7
            GOOD,  # 8
        ],
    )
    with pytest.raises(SFTDataError) as info:
        load_examples(path)
    msg = str(info.value)
    assert f"{path}: 5 bad lines:" in msg
    assert f"{path}:2: not JSON" in msg
    assert f"{path}:3: not a JSON object (a list)" in msg
    assert f"{path}:4: missing 'completion'" in msg
    assert f"{path}:5: 'prompt' is a int, not a string" in msg
    assert f"{path}:7: 'completion' is empty" in msg
    assert f"{path}:1:" not in msg and f"{path}:6:" not in msg and f"{path}:8:" not in msg


def test_one_bad_line_is_a_one_line_message_and_the_error_is_a_value_error(tmp_path):
    path = write(tmp_path, [GOOD, GOOD, '"just a string"'])
    with pytest.raises(ValueError) as info:
        load_examples(path)
    assert str(info.value) == f"{path}:3: not a JSON object (a str)"


def test_past_ten_bad_lines_the_error_shows_the_first_ten_and_counts_them_all(tmp_path):
    path = write(tmp_path, ["nope"] * 12)
    with pytest.raises(SFTDataError) as info:
        load_examples(path)
    msg = str(info.value)
    assert "12 bad lines (first 10 shown)" in msg
    assert f"{path}:10:" in msg and f"{path}:11:" not in msg


def test_blank_lines_are_skipped_extra_keys_ignored_and_line_numbers_kept(tmp_path):
    extra = json.dumps({"prompt": "a", "completion": "b", "source": "teacher", "score": 1})
    path = write(tmp_path, [GOOD, "", "   ", extra])
    examples = load_examples(path)
    assert [e.where for e in examples] == [f"{path}:1", f"{path}:4"]
    assert (examples[1].prompt, examples[1].completion) == ("a", "b")


def test_a_missing_or_empty_file_is_an_error(tmp_path):
    with pytest.raises(SFTDataError, match="no such file"):
        load_examples(tmp_path / "absent.jsonl")
    with pytest.raises(SFTDataError, match="no examples"):
        load_examples(write(tmp_path, ["", ""]))


def test_the_loss_covers_the_completion_and_eos_only_on_the_char_tokenizer():
    tok = CharTokenizer()
    seq = tokenize(SFTExample("ab", "c", "f:1"), tok, add_eos=True)
    # ids 0..6 are the special tokens, then string.printable: "0".."9" are 7..16, "a" is 17
    assert seq.ids == (17, 18, 19, 1) and seq.loss_start == 2 and seq.n_targets == 2
    ids, mask = pad_batch([seq.ids], tok.pad_id, [seq.loss_start])
    # targets are ids[1:] = b, c, <eos>: the prompt's own "b" gets no loss
    assert mask.tolist() == [[0.0, 1.0, 1.0]]
    no_eos = tokenize(SFTExample("ab", "cd", "f:1"), tok, add_eos=False)
    assert no_eos.ids == (17, 18, 19, 20) and no_eos.loss_start == 2


def test_the_prompt_goes_through_encode_prompt_and_eos_falls_back_to_eos_ids():
    class Tok:
        eos_ids = [9, 8]

        def encode_prompt(self, text):
            return [5] + [1] * len(text)  # a BOS, then one id per character

        def encode(self, text):
            return [2] * len(text)

    assert eos_id_of(Tok()) == 9
    seq = tokenize(SFTExample("pq", "r", "f:1"), Tok(), add_eos=True)
    assert seq.ids == (5, 1, 1, 2, 9) and seq.loss_start == 3

    class Plain:
        eos_id = 4

        def encode(self, text):
            return [3] * len(text)

    assert tokenize(SFTExample("p", "r", "f:1"), Plain()).ids == (3, 3, 4)


def test_examples_longer_than_the_context_are_named_with_their_lengths():
    tok = CharTokenizer()
    examples = [SFTExample("ab", "c", "d.jsonl:1"), SFTExample("abcd", "efgh", "d.jsonl:2")]
    assert len(tokenize_examples(examples, tok, max_len=9)) == 2  # 4 + 4 + EOS = 9 fits
    with pytest.raises(SFTDataError) as info:
        tokenize_examples(examples, tok, max_len=8)
    assert str(info.value) == (
        "d.jsonl:2: 9 tokens (4 prompt + 5 completion) exceed the model's context of 8 "
        "(model.max_seq_len)"
    )


def test_the_held_out_split_is_seeded_disjoint_and_keeps_at_least_one_line():
    ex = [SFTExample("p", str(i), f"f:{i}") for i in range(10)]
    train, held = split_examples(ex, 0.05, seed=0)  # round(0.5) = 0, raised to 1
    assert len(held) == 1 and len(train) == 9 and set(train).isdisjoint(held)
    assert split_examples(ex, 0.05, seed=0) == (train, held)
    assert len(split_examples(ex, 0.3, seed=0)[1]) == 3
    assert split_examples(ex, 0.0, seed=0) == (ex, [])
    assert split_examples(ex[:1], 0.5, seed=0) == (ex[:1], [])  # one line: nothing held out
    assert {e.completion for e in split_examples(ex, 0.5, seed=1)[1]} != {
        e.completion for e in split_examples(ex, 0.5, seed=2)[1]
    }


def test_epochs_set_the_steps_rounding_up():
    assert epoch_steps(1, 9, 4) == 3  # 9 lines at 4 per step: 2.25 -> 3
    assert epoch_steps(2.5, 10, 4) == 7  # 6.25 -> 7
    assert epoch_steps(0.01, 10, 4) == 1


def test_bad_sft_settings_are_listed_in_one_config_error(tmp_path):
    cfg = Config()
    with pytest.raises(ConfigError, match="sft.data is not set"):
        validate_sft(cfg)
    cfg.sft.data = str(write(tmp_path, [GOOD]))
    validate_sft(cfg)
    cfg.sft.batch_size, cfg.sft.eval_fraction, cfg.sft.epochs = 0, 1.0, 0
    cfg.sft.eval_data = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError) as info:
        validate_sft(cfg)
    msg = str(info.value)
    for key in ("sft.batch_size=0", "sft.eval_fraction=1.0", "sft.epochs=0", "sft.eval_data="):
        assert key in msg


def test_a_line_that_is_not_utf8_is_named_and_a_leading_byte_order_mark_is_accepted(tmp_path):
    from rlreason.sft.data import SFTDataError, load_examples

    good = b'{"prompt": "Q: 1+1=\\nA: ", "completion": "<answer>2</answer>"}\n'
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good + b"\xff\xfe not text\n")
    with pytest.raises(SFTDataError, match=r"bad\.jsonl:2: not UTF-8 text \(byte 0"):
        load_examples(bad)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + good + good)
    assert [e.prompt for e in load_examples(bom)] == ["Q: 1+1=\nA: "] * 2
    with pytest.raises(SFTDataError, match="a directory"):
        load_examples(tmp_path)
