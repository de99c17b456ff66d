"""Templates: exact renderings, stop strings, prefill flags, and the tokenizer chat form."""

import pytest

from envs.base import Task
from envs.templates import TEMPLATES, Template, get_template, render

R1_HEAD = (
    "A conversation between User and Assistant. The user asks a question, and the "
    "Assistant solves it. The assistant first thinks about the reasoning process in the "
    "mind and then provides the user with the answer. The reasoning process and answer "
    "are enclosed within <think> </think> and <answer> </answer> tags, respectively, "
    "i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("r1_zero", R1_HEAD + " User: 12+345= Assistant:"),
        ("r1_zero_prefill", R1_HEAD + " User: 12+345= Assistant: <think>"),
        ("plain", "12+345="),
        ("tiny", "Q: 12+345=\nA: "),
        (
            "qwen_math",
            "<|im_start|>system\nPlease reason step by step, and put your final answer "
            "within \\boxed{}.<|im_end|>\n<|im_start|>user\n12+345=<|im_end|>\n"
            "<|im_start|>assistant\n",
        ),
    ],
)
def test_templates_render_exactly(name, expected):
    assert render(name, "12+345=") == expected
    assert render(name, Task(prompt="12+345=", answer="357")) == expected


def test_stop_strings_and_prefill_flags():
    assert TEMPLATES["r1_zero"].stop == ("</answer>",) and not TEMPLATES["r1_zero"].prefilled
    assert TEMPLATES["r1_zero_prefill"].prefilled
    assert TEMPLATES["tiny"].stop == ("</answer>",) and not TEMPLATES["tiny"].prefilled
    assert "<|im_end|>" in TEMPLATES["qwen_math"].stop
    assert all(isinstance(t, Template) and t.name == n for n, t in TEMPLATES.items())
    assert [n for n, t in TEMPLATES.items() if t.prefilled] == ["r1_zero_prefill"]


def test_rendering_is_pure():
    task = Task(prompt="p", meta={"difficulty": 1})
    assert render("r1_zero", task) == render("r1_zero", task)
    assert task == Task(prompt="p", meta={"difficulty": 1})


class FakeChatTokenizer:
    chat_template = "{{ messages }}"

    def __init__(self):
        self.calls = []

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
        self.calls.append((messages, add_generation_prompt, tokenize))
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<bot>"


def test_chat_template_delegates_to_the_tokenizer():
    tok = FakeChatTokenizer()
    assert render("chat", "hi", tokenizer=tok) == "<user>hi</user><bot>"
    assert tok.calls == [([{"role": "user", "content": "hi"}], True, False)]


def test_chat_template_without_a_tokenizer_chat_template_is_a_clear_error():
    tok = FakeChatTokenizer()
    tok.chat_template = None
    with pytest.raises(ValueError, match="has no chat template"):
        render("chat", "hi", tokenizer=tok)
    with pytest.raises(ValueError, match="needs a tokenizer with apply_chat_template"):
        render("chat", "hi")
    with pytest.raises(ValueError, match="needs a tokenizer with apply_chat_template"):
        render("chat", "hi", tokenizer=object())


def test_unknown_template_and_bad_input_are_clear_errors():
    with pytest.raises(KeyError, match="valid templates: .*r1_zero"):
        get_template("r1")
    with pytest.raises(TypeError, match="got int"):
        render("plain", 3)


def test_fixed_templates_give_their_own_stop_strings_whatever_the_tokenizer():
    for name in ("r1_zero", "r1_zero_prefill", "qwen_math", "plain", "tiny"):
        assert TEMPLATES[name].stop_strings() == TEMPLATES[name].stop
        assert TEMPLATES[name].stop_strings(object()) == TEMPLATES[name].stop


class Added:
    def __init__(self, content):
        self.content = content


class TurnTokenizer:
    """Renders one fixed turn format; `added` are its added (special) tokens."""

    chat_template = "set"

    def __init__(self, head, closing, added, eos_token):
        self.head, self.closing, self.eos_token = head, closing, eos_token
        self.added_tokens_decoder = {i: Added(t) for i, t in enumerate(added)}

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True):
        out = "".join(f"{self.head}{m['role']}\n{m['content']}{self.closing}" for m in messages)
        return out + (f"{self.head}assistant\n" if add_generation_prompt else "")


@pytest.mark.parametrize(
    "closing, added, eos, expected",
    [
        (
            "<|im_end|>\n",
            ["<|im_start|>", "<|im_end|>"],
            "<|endoftext|>",
            ("<|im_end|>", "<|endoftext|>"),
        ),
        (
            "<|eot_id|>",
            ["<|eot_id|>", "<|end_of_text|>"],
            "<|end_of_text|>",
            ("<|eot_id|>", "<|end_of_text|>"),
        ),
        ("<end_of_turn>\n", ["<end_of_turn>", "<eos>"], "<eos>", ("<end_of_turn>", "<eos>")),
        (" </s>", ["</s>"], "</s>", ("</s>",)),  # Llama-2: the turn closes with the EOS token
        ("\n### End\n\n", [], "</s>", ("### End", "</s>")),  # a plain-text marker
        ("", ["<|im_end|>"], "<|im_end|>", ("<|im_end|>",)),  # nothing after the content
    ],
)
def test_chat_stop_strings_are_the_end_of_turn_marker_then_the_eos_tokens(
    closing, added, eos, expected
):
    tok = TurnTokenizer("<|start|>", closing, added, eos)
    assert TEMPLATES["chat"].stop_strings(tok) == expected


def test_the_longest_added_token_opening_the_closing_is_the_marker():
    tok = TurnTokenizer("<s>", "<|end|><|endoftext|>", ["<|end", "<|end|>", "<|endoftext|>"], None)
    assert TEMPLATES["chat"].stop_strings(tok) == ("<|end|>",)


def test_a_template_that_refuses_an_assistant_turn_leaves_the_eos_tokens():
    class Refusing(TurnTokenizer):
        def apply_chat_template(self, messages, **kw):
            raise ValueError("conversation must end with a user turn")

    tok = Refusing("<s>", "", [], "</s>")
    assert TEMPLATES["chat"].stop_strings(tok) == ("</s>",)
    with pytest.raises(ValueError, match="needs a tokenizer with apply_chat_template"):
        TEMPLATES["chat"].stop_strings(None)
