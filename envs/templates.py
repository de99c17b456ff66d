"""Prompt templates: turn a `Task` (or a bare prompt string) into the text the policy continues.

Each template is a `Template` entry in `TEMPLATES` with a pure `render`, the `stop` strings that end
a completion, and `prefilled` (the rendered prompt already opens `<think>`, so the completion
starts inside the reasoning). `stop_strings(tokenizer)` gives the stop strings to generate with:
`stop` itself, or for `chat` the ones the tokenizer defines (below). Entries:

- `r1_zero`: the DeepSeek-R1 paper's R1-Zero template (User/Assistant, <think>/<answer> tags);
- `r1_zero_prefill`: the same, ending with `Assistant: <think>`;
- `qwen_math`: Qwen2.5-Math's ChatML prompt asking for the final answer in \\boxed{};
- `plain`: the task prompt verbatim (no instruction, no stop string);
- `tiny`: `"Q: {prompt}\\nA: "`, short ASCII for the built-in character-level model;
- `chat`: the prompt as one user message through `tokenizer.apply_chat_template` (duck-typed:
  `apply_chat_template(messages, add_generation_prompt=True, tokenize=False)`); needs a tokenizer
  that has a chat template and says so clearly when it has none. Its stop strings are the chat
  template's end-of-turn marker, then the tokenizer's EOS token strings (`chat_stop_strings`).

End-of-turn rule: render a user turn and an assistant turn holding a sentinel, without the
generation prompt; what follows the sentinel, leading whitespace skipped, is the assistant turn's
closing. The marker is the longest added (special) token of the tokenizer that the closing starts
with (`<|im_end|>` for ChatML, `<|eot_id|>` for Llama-3, `<end_of_turn>` for Gemma, `</s>` for
Llama-2/Mistral), else the closing's first line (a plain-text marker). A template that renders
nothing after the content, drops the sentinel, or refuses to render gives no marker: the EOS
tokens remain. Added tokens come from `added_tokens_decoder` (id -> token with `.content`, as in
transformers and `HFTokenizer`), EOS strings from `eos_tokens`, else `eos_token`.

This module does not tokenize, sample or check formats; the engine and `rewards.format` do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envs.base import Task

R1_ZERO_INSTRUCTION = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process "
    "here </think> <answer> answer here </answer>."
)
QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
SENTINEL = "RLREASON-END-OF-TURN-PROBE"


@dataclass(frozen=True)
class Template:
    """A named prompt format: `render(prompt, tokenizer) -> str` plus its stop strings (fixed in
    `stop`, or computed from the tokenizer by `stop_fn`)."""

    name: str
    fn: Callable[[str, Any], str]
    stop: tuple[str, ...] = ()
    prefilled: bool = False
    description: str = ""
    stop_fn: Callable[[Any], tuple[str, ...]] | None = None

    def render(self, task_or_prompt: Task | str, tokenizer: Any = None) -> str:
        return self.fn(prompt_text(task_or_prompt), tokenizer)

    def stop_strings(self, tokenizer: Any = None) -> tuple[str, ...]:
        """The strings that end a completion of this template under `tokenizer`."""
        return self.stop_fn(tokenizer) if self.stop_fn is not None else self.stop


def prompt_text(task_or_prompt: Task | str) -> str:
    if isinstance(task_or_prompt, Task):
        return task_or_prompt.prompt
    if isinstance(task_or_prompt, str):
        return task_or_prompt
    raise TypeError(f"templates render a Task or a str, got {type(task_or_prompt).__name__}")


def _r1_zero(prompt: str, _tok: Any) -> str:
    return f"{R1_ZERO_INSTRUCTION} User: {prompt} Assistant:"


def _r1_zero_prefill(prompt: str, _tok: Any) -> str:
    return f"{_r1_zero(prompt, _tok)} <think>"


def _qwen_math(prompt: str, _tok: Any) -> str:
    return (
        f"<|im_start|>system\n{QWEN_MATH_SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    )


def _chat_apply(tokenizer: Any):
    apply = getattr(tokenizer, "apply_chat_template", None)
    if tokenizer is None or apply is None:
        raise ValueError(
            "template 'chat' needs a tokenizer with apply_chat_template(); got "
            f"{type(tokenizer).__name__}: use r1_zero, plain or tiny instead"
        )
    if getattr(tokenizer, "chat_template", "") is None:
        raise ValueError(
            f"template 'chat': tokenizer {type(tokenizer).__name__} has no chat "
            "template (chat_template is None); use r1_zero, plain or tiny instead"
        )
    return apply


def _chat(prompt: str, tokenizer: Any) -> str:
    apply = _chat_apply(tokenizer)
    text = apply([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    if not isinstance(text, str):
        raise ValueError(
            f"template 'chat': apply_chat_template returned {type(text).__name__}, expected str"
        )
    return text


def _added_tokens(tokenizer: Any) -> list[str]:
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    tokens = [getattr(t, "content", t) for t in decoder.values()]
    return [t for t in tokens if isinstance(t, str) and t]


def _eos_tokens(tokenizer: Any) -> list[str]:
    tokens = getattr(tokenizer, "eos_tokens", None)
    if tokens is None:
        eos = getattr(tokenizer, "eos_token", None)
        tokens = [eos] if eos is not None else []
    return [str(t) for t in tokens if t]


def end_of_turn(tokenizer: Any) -> str | None:
    """The chat template's end-of-turn marker (see the module docstring), or None."""
    apply = _chat_apply(tokenizer)
    turns = [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": SENTINEL}]
    try:
        text = apply(turns, add_generation_prompt=False, tokenize=False)
    except Exception:  # a template may refuse an assistant-final conversation
        return None
    if not isinstance(text, str) or SENTINEL not in text:
        return None
    closing = text.rpartition(SENTINEL)[2].lstrip()
    specials = [t for t in _added_tokens(tokenizer) if closing.startswith(t)]
    if specials:
        return max(specials, key=len)
    return closing.split("\n", 1)[0].strip() or None


def chat_stop_strings(tokenizer: Any) -> tuple[str, ...]:
    """The `chat` template's stop strings: its end-of-turn marker, then the EOS token strings."""
    marker = end_of_turn(tokenizer)
    return tuple(dict.fromkeys([*([marker] if marker else []), *_eos_tokens(tokenizer)]))


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("r1_zero", _r1_zero, ("</answer>",), False, "DeepSeek-R1-Zero paper template"),
        Template(
            "r1_zero_prefill",
            _r1_zero_prefill,
            ("</answer>",),
            True,
            "R1-Zero template ending with an opened <think>",
        ),
        Template(
            "qwen_math",
            _qwen_math,
            ("<|im_end|>", "<|endoftext|>"),
            False,
            "Qwen2.5-Math ChatML prompt, boxed final answer",
        ),
        Template("plain", lambda prompt, _tok: prompt, (), False, "the task prompt verbatim"),
        Template(
            "tiny",
            lambda prompt, _tok: f"Q: {prompt}\nA: ",
            ("</answer>",),
            False,
            "short ASCII frame for the built-in character-level model",
        ),
        Template(
            "chat",
            _chat,
            (),
            False,
            "the tokenizer's own chat template, one user turn",
            chat_stop_strings,
        ),
    )
}


def get_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise KeyError(f"unknown template {name!r}; valid templates: {sorted(TEMPLATES)}")
    return TEMPLATES[name]


def render(name: str, task_or_prompt: Task | str, tokenizer: Any = None) -> str:
    """Render `task_or_prompt` with the registered template `name`."""
    return get_template(name).render(task_or_prompt, tokenizer)
