"""Format checks and format rewards for the `<think>…</think><answer>…</answer>` template.

Three rewards, each `(completions, tasks, *, prefilled=False) -> list[float]` (tasks are unused):

- `strict_format_reward`: 1.0 iff `is_strict_format`, else 0.0 (the DeepSeek-R1-Zero template,
  Guo et al. 2025, "DeepSeek-R1", §2.2.2 format reward).
- `soft_format_reward`: 1.0 iff the four tags occur in the right order somewhere, anything
  (including nothing or more tags) between them; a shaping signal for early training.
- `tag_count_reward`: 0.25 for each of the four tags that occurs exactly the expected number of
  times (once; zero times for `<think>` when prefilled), so 0.0 … 1.0 in steps of 0.25.

`prefilled=True` is for templates whose prompt already ends with `<think>` (the r1_zero template
does): the completion then starts inside the reasoning and must not open `<think>` again.

Weight: format rewards are shaping, not the objective. Use a small weight (`RECOMMENDED_WEIGHT`
= 0.1) or, instead, use `strict_format_reward` as the gate of a `ComposedReward` (weight 0) so
accuracy counts only on well-formed completions.

All checks are linear-time (`str.count` / `str.find`, no backtracking regex), so a hostile 1 MB
completion costs milliseconds. This module does not extract or judge the answer's content (see
`rewards.math`) and does not look at the tokenizer: completions are decoded text with EOS and stop
strings already removed; a trailing special token like `<|im_end|>` fails the strict check.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envs.base import Task

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
TAG_RE = re.compile(r"</?(?:think|answer)>")  # one alternation, no nesting: linear scan
RECOMMENDED_WEIGHT = 0.1


def _expected_counts(prefilled: bool) -> dict[str, int]:
    return {THINK_OPEN: 0 if prefilled else 1, THINK_CLOSE: 1, ANSWER_OPEN: 1, ANSWER_CLOSE: 1}


def split_completion(completion: str, prefilled: bool = False) -> tuple[str | None, str | None]:
    """Leniently split a completion into (reasoning, answer), each stripped, None if absent.

    reasoning: the text between the first `<think>` (or the start, if `prefilled`) and the first
    `</think>` after it; None when either tag is missing.
    answer: the text between the first `<answer>` after the reasoning (after the start when there
    is no reasoning) and the first `</answer>` after that; None when either tag is missing.
    Nested or repeated tags are kept as text; use `is_strict_format` to judge the structure.
    """
    reasoning, search_from = None, 0
    start = 0 if prefilled else completion.find(THINK_OPEN)
    if start >= 0:
        start += 0 if prefilled else len(THINK_OPEN)
        end = completion.find(THINK_CLOSE, start)
        if end >= 0:
            reasoning, search_from = completion[start:end].strip(), end + len(THINK_CLOSE)
    a_open = completion.find(ANSWER_OPEN, search_from)
    if a_open < 0:
        return reasoning, None
    a_close = completion.find(ANSWER_CLOSE, a_open + len(ANSWER_OPEN))
    if a_close < 0:
        return reasoning, None
    return reasoning, completion[a_open + len(ANSWER_OPEN) : a_close].strip()


def is_strict_format(completion: str, prefilled: bool = False) -> bool:
    """True iff the whole completion is `<think>R</think><answer>A</answer>`.

    Anchored at both ends; whitespace is allowed before `<think>`, between `</think>` and
    `<answer>`, and after `</answer>`, nothing else. Exactly one of each tag (zero `<think>` when
    `prefilled`: the prompt opened it), so R and A contain no tags; R and A must be non-empty
    after stripping whitespace. Equivalent to the regex
    `^\\s*<think>(R)</think>\\s*<answer>(A)</answer>\\s*$` plus those conditions, implemented
    with counts and finds so that it is linear in the length of the input.
    """
    if not isinstance(completion, str):
        return False
    for tag, count in _expected_counts(prefilled).items():
        if completion.count(tag) != count:
            return False
    pos = 0
    if not prefilled:
        open_at = completion.find(THINK_OPEN)
        if completion[:open_at].strip():
            return False
        pos = open_at + len(THINK_OPEN)
    t_close = completion.find(THINK_CLOSE)
    a_open = completion.find(ANSWER_OPEN)
    a_close = completion.find(ANSWER_CLOSE)
    if not pos <= t_close < a_open < a_close:
        return False
    return (
        bool(completion[pos:t_close].strip())
        and not completion[t_close + len(THINK_CLOSE) : a_open].strip()
        and bool(completion[a_open + len(ANSWER_OPEN) : a_close].strip())
        and not completion[a_close + len(ANSWER_CLOSE) :].strip()
    )


def is_soft_format(completion: str, prefilled: bool = False) -> bool:
    """True iff `<think>`, `</think>`, `<answer>`, `</answer>` occur in this order (as a
    subsequence: anything, even other tags, may sit between or around them). With `prefilled`
    the `<think>` is taken as already open."""
    pos = 0
    for tag in TAGS[1:] if prefilled else TAGS:
        at = completion.find(tag, pos)
        if at < 0:
            return False
        pos = at + len(tag)
    return True


def tag_count_score(completion: str, prefilled: bool = False) -> float:
    """0.25 for each tag whose count is exactly as expected (1; 0 for `<think>` if prefilled)."""
    return 0.25 * sum(completion.count(tag) == n for tag, n in _expected_counts(prefilled).items())


def strict_format_reward(
    completions: list[str], tasks: list[Task], *, prefilled: bool = False
) -> list[float]:
    """1.0 where `is_strict_format(completion, prefilled)`, else 0.0 (DeepSeek-R1 format reward)."""
    return [float(is_strict_format(c, prefilled)) for c in completions]


def soft_format_reward(
    completions: list[str], tasks: list[Task], *, prefilled: bool = False
) -> list[float]:
    """1.0 where the four tags appear in order (`is_soft_format`), else 0.0; shaping only, in
    the spirit of the soft format reward of Hugging Face's open-r1 (2025) reproduction."""
    return [float(is_soft_format(c, prefilled)) for c in completions]


def tag_count_reward(
    completions: list[str], tasks: list[Task], *, prefilled: bool = False
) -> list[float]:
    """`tag_count_score` per completion: 0.25 per correctly counted tag; a dense shaping signal
    after the tag-count reward of open-r1 (2025), without its newline conventions."""
    return [tag_count_score(c, prefilled) for c in completions]
