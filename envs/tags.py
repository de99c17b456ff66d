"""The one parser of completion structure: `<think>`, `<answer>` and `\\boxed{}`.

Every reader of tags goes through these functions: the format, math, code and language rewards,
an env's own verifier (countdown), the scorer's diagnostics, the JSONL loader (`\\boxed{}` in
reference solutions). `prefilled=True` means the prompt already opened `<think>`, so the
completion starts inside the reasoning. All functions are pure and linear in the input on hostile
text (`str.find`/`count`, one non-nested alternation, bounded retries for unbalanced braces).

It lives in envs, the lowest layer, next to the templates that write these tags: rewards may
import envs, never the reverse, so this is the one place both can read them from.
Not here: what earns a reward (rewards.format, rewards.math) or how answers compare.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
TAG_RE = re.compile(r"</?(?:think|answer)>")  # one alternation, no nesting: linear scan
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.S)
BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
MAX_BOX_TRIES = 8  # unbalanced candidates tried from the end before giving up


def split_completion(completion: str, prefilled: bool = False) -> tuple[str | None, str | None]:
    """Leniently split a completion into (reasoning, answer), each stripped, None if absent.

    reasoning: the text between the first `<think>` (or the start, if `prefilled`) and the first
    `</think>` after it; None when either tag is missing.
    answer: the text between the first `<answer>` after the reasoning (after the start when there
    is no reasoning) and the first `</answer>` after that; None when either tag is missing.
    Nested or repeated tags are kept as text; `is_strict_format` judges the structure.
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


def reasoning(completion: str, prefilled: bool = False) -> str | None:
    """The stripped reasoning of `split_completion`; None without a closed think block."""
    return split_completion(completion, prefilled)[0]


def has_reasoning(completion: str, prefilled: bool = False) -> bool:
    """True iff the completion has a closed, non-empty think block."""
    return bool(reasoning(completion, prefilled))


def expected_counts(prefilled: bool) -> dict[str, int]:
    """How often each tag occurs in a well-formed completion (no `<think>` when prefilled)."""
    return {THINK_OPEN: 0 if prefilled else 1, THINK_CLOSE: 1, ANSWER_OPEN: 1, ANSWER_CLOSE: 1}


def is_strict_format(completion: str, prefilled: bool = False) -> bool:
    """True iff the whole completion is `<think>R</think><answer>A</answer>`.

    Anchored at both ends; whitespace is allowed before `<think>`, between `</think>` and
    `<answer>`, and after `</answer>`, nothing else. Exactly one of each tag (zero `<think>` when
    `prefilled`), so R and A contain no tags; R and A must be non-empty after stripping.
    """
    if not isinstance(completion, str):
        return False
    for tag, count in expected_counts(prefilled).items():
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
    """True iff the four tags occur in order as a subsequence (`<think>` taken as open when
    prefilled); anything, even other tags, may sit between or around them."""
    pos = 0
    for tag in TAGS[1:] if prefilled else TAGS:
        at = completion.find(tag, pos)
        if at < 0:
            return False
        pos = at + len(tag)
    return True


def answers_of(text: str) -> list[str]:
    """Every closed `<answer>…</answer>` content, in order (think blocks not excluded)."""
    return ANSWER_RE.findall(text)


def strip_think(text: str, prefilled: bool = False) -> str:
    """Drop `<think>…</think>` blocks (an unclosed one swallows the rest), in linear time."""
    if prefilled:
        text = THINK_OPEN + text
    kept, pos = [], 0
    while True:
        start = text.find(THINK_OPEN, pos)
        if start == -1:
            kept.append(text[pos:])
            break
        kept.append(text[pos:start])
        end = text.find(THINK_CLOSE, start)
        if end == -1:
            break
        pos = end + len(THINK_CLOSE)
    return " ".join(kept).replace(THINK_CLOSE, " ")


def answer_span(completion: str, prefilled: bool = False) -> str | None:
    """The text a graded answer is read from: reasoning dropped (`strip_think`), then the last
    `<answer>` block if there is one (None when that block is never closed), else the rest."""
    text = strip_think(completion, prefilled)
    start = text.rfind(ANSWER_OPEN)
    if start == -1:
        return text
    end = text.find(ANSWER_CLOSE, start)
    return None if end == -1 else text[start + len(ANSWER_OPEN) : end]


def final_answer(completion: str) -> str | None:
    """Text of the last `<answer>…</answer>` after the reasoning, or None.

    Everything up to the last `</think>` is reasoning and never counts; an opened but unclosed
    `<think>` means no answer. A trailing `<answer>` left open (the engine cut the stop string
    `</answer>`) counts up to the end of the text.
    """
    _, sep, tail = completion.rpartition(THINK_CLOSE)
    if not sep:
        if THINK_OPEN in completion:
            return None
        tail = completion
    found = answers_of(tail)
    if found:
        return found[-1]
    opened = tail.rfind(ANSWER_OPEN)
    return tail[opened + len(ANSWER_OPEN) :] if opened >= 0 else None


def _closing_brace(text: str, open_at: int) -> int:
    """Index of the `}` matching the `{` at `open_at`, or -1."""
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def last_boxed(text: str) -> str | None:
    """Content (unstripped) of the last brace-matched `\\boxed{…}` or `\\fbox{…}` in `text`
    (`\\boxed {…}` too); an unbalanced last one falls back to an earlier one, at most
    `MAX_BOX_TRIES` tries; None when there is none."""
    opens = [m.end() - 1 for m in BOX_RE.finditer(text)]
    for open_at in reversed(opens[-MAX_BOX_TRIES:]):
        close = _closing_brace(text, open_at)
        if close >= 0:
            return text[open_at + 1 : close]
    return None
