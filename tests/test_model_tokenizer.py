import pytest

from rlreason.model.tokenizer import SPECIAL_TOKENS, CharTokenizer


def test_tags_are_single_tokens_and_round_trip():
    tok = CharTokenizer()
    text = "<think>12+3=15</think><answer>15</answer>"
    ids = tok.encode(text)
    assert ids[0] == tok.token_id("<think>") and ids[-1] == tok.token_id("</answer>")
    assert len(ids) == 4 + len("12+3=15") + len("15")
    assert tok.decode(ids) == text


def test_eos_and_pad_are_dropped_by_decode_and_tags_optionally():
    tok = CharTokenizer()
    ids = tok.encode("<answer>7</answer>", add_eos=True) + [tok.pad_id]
    assert tok.decode(ids) == "<answer>7</answer>"
    assert tok.decode(ids, skip_special=True) == "7"


def test_unknown_characters_become_unk_not_an_error():
    tok = CharTokenizer()
    assert tok.encode("a中") == [tok.stoi["a"], tok.unk_id]
    tok2 = CharTokenizer.from_texts(["a中<think>"])
    assert tok2.decode(tok2.encode("中a")) == "中a"
    assert "<" in tok2.alphabet and "中" in tok2.alphabet


def test_save_and_load_give_the_same_vocabulary(tmp_path):
    tok = CharTokenizer.from_texts(["привет"])
    tok.save(tmp_path)
    again = CharTokenizer.load(tmp_path)
    assert again.itos == tok.itos and again.vocab_size == tok.vocab_size == len(
        SPECIAL_TOKENS
    ) + len(tok.alphabet)


def test_loading_a_foreign_file_is_a_clear_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"model": "bpe"}')
    with pytest.raises(ValueError, match="not a char tokenizer"):
        CharTokenizer.load(tmp_path)
    with pytest.raises(ValueError, match="outside vocabulary"):
        CharTokenizer().decode([10_000])


def test_eos_ids_hold_the_one_eos_and_prompts_get_no_bos():
    tok = CharTokenizer()
    assert tok.eos_ids == [tok.eos_id] == [1]
    assert tok.encode_prompt("Q: 1+2=\nA: ") == tok.encode("Q: 1+2=\nA: ")
