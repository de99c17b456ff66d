"""Prompt templates: turn a `Task` (or a bare prompt string) into the text the policy continues.

Each template is a `Template` entry in `TEMPLATES` with a pure `render`, the `stop` strings that end
a completion, and `prefilled` (the rendered prompt already opens `<think>`, so the completion
starts inside the reasoning). Entries:

- `r1_zero`: the DeepSeek-R1 paper's R1-Zero template (User/Assistant, <think>/<answer> tags);
- `r1_zero_prefill`: the same, ending with `Assistant: <think>`;
- `qwen_math`: Qwen2.5-Math's ChatML prompt asking for the final answer in \\boxed{};
- `plain`: the task prompt verbatim (no instruction, no stop string);
- `tiny`: `"Q: {prompt}\\nA: "`, short ASCII for the built-in character-level model;
- `chat`: the prompt as one user message through `tokenizer.apply_chat_template` (duck-typed:
  `apply_chat_template(messages, add_generation_prompt=True, tokenize=False)`); needs a tokenizer
  that has a chat template and says so clearly when it has none.

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


@dataclass(frozen=True)
class Template:
    """A named prompt format: `render(prompt, tokenizer) -> str` plus its stop strings."""

    name: str
    fn: Callable[[str, Any], str]
    stop: tuple[str, ...] = ()
    prefilled: bool = False
    description: str = ""

    def render(self, task_or_prompt: Task | str, tokenizer: Any = None) -> str:
        return self.fn(prompt_text(task_or_prompt), tokenizer)


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


def _chat(prompt: str, tokenizer: Any) -> str:
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
    text = apply([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    if not isinstance(text, str):
        raise ValueError(
            f"template 'chat': apply_chat_template returned {type(text).__name__}, expected str"
        )
    return text


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
        Template("chat", _chat, (), False, "the tokenizer's own chat template, one user turn"),
    )
}


def get_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise KeyError(f"unknown template {name!r}; valid templates: {sorted(TEMPLATES)}")
    return TEMPLATES[name]


def render(name: str, task_or_prompt: Task | str, tokenizer: Any = None) -> str:
    """Render `task_or_prompt` with the registered template `name`."""
    return get_template(name).render(task_or_prompt, tokenizer)
