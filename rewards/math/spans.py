"""Linear scanners over completion text, shared by the two extraction modes (`extract`).

`after_reasoning` (the text after the last `</think>`, up to a later `<think>`), `boxes`
(outermost complete `\\boxed{}`/`\\fbox{}` and whether an unbalanced one is left),
`math_spans` (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]` contents) and `clean_answer` (leading answer
phrases, trailing punctuation, enclosing delimiters and boxes dropped). Each is linear in its
input: `str.find`, regexes without nested quantifiers, one stack pass for braces, a closer
dropped once it is found missing. Not here: which of these the modes use,
or in which order (`rewards.math.extract`, `rewards.math.lenient`).
"""

from __future__ import annotations

import re

from envs.tags import BOX_RE, THINK_CLOSE, THINK_OPEN

_BRACE = re.compile(r"[{}]")
_LEADING = re.compile(
    r"\s*(?:\*\*\s*)?(?:the\s+)?(?:final\s+)?answer\s*(?:\*\*\s*)?(?:is\b|:|=)\s*(?:\*\*)?\s*", re.I
)
TRAILING = " \t\r\n.,;:?"
_ENCLOSING = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_MATH_CLOSE = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}

Span = tuple[int, int, str]  # (start, end, content) of a box


def clean_answer(text: str) -> str:
    """Drop a leading answer phrase, trailing sentence punctuation, enclosing math delimiters and
    an enclosing box (each repeated a few times, for "Final Answer: The final answer is $5$.")."""
    for _ in range(3):
        before = text
        m = _LEADING.match(text)
        if m and m.end() < len(text):
            text = text[m.end() :]
        text = text.strip().rstrip(TRAILING)
        for open_, close in _ENCLOSING:
            inner = text[len(open_) : -len(close)]
            if (
                len(text) > len(open_) + len(close)
                and text.startswith(open_)
                and text.endswith(close)
                and "$" not in inner
            ):
                text = inner.strip()
                break
        spans = boxes(text)[0] if text.startswith("\\") else []
        if len(spans) == 1 and spans[0][:2] == (0, len(text)):
            text = spans[0][2].strip()  # `\\boxed{\\boxed{4}}`
        if text == before:
            break
    return text.strip()


def after_reasoning(text: str) -> tuple[str, bool]:
    """(the text after the last `</think>` up to any later `<think>`, whether such a `<think>`
    cut it): reasoning, closed or not, is never part of it."""
    tail = text.rpartition(THINK_CLOSE)[2]
    cut = tail.find(THINK_OPEN)
    return (tail, False) if cut < 0 else (tail[:cut], True)


def _brace_matches(text: str, start: int) -> dict[int, int]:
    """{index of `{`: index of its matching `}`} from `start` on, in one stack pass."""
    stack, match = [], {}
    for m in _BRACE.finditer(text, start):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            match[stack.pop()] = m.start()
    return match


def boxes(text: str) -> tuple[list[Span], bool]:
    """(outermost complete boxes as (start, end, content), whether an unbalanced box opener lies
    outside them). Linear: one regex pass for openers, one stack pass for braces."""
    openers = [(m.start(), m.end() - 1) for m in BOX_RE.finditer(text)]
    if not openers:
        return [], False
    match = _brace_matches(text, openers[0][1])
    spans, unbalanced, reach = [], False, -1
    for start, brace in openers:
        if brace <= reach:
            continue
        close = match.get(brace)
        if close is None:
            unbalanced = True
            continue
        spans.append((start, close + 1, text[brace + 1 : close]))
        reach = close
    return spans, unbalanced


def squash(text: str) -> str:
    """`text` without any whitespace (how two answers are compared as strings)."""
    return "".join(text.split())


def outside(text: str, spans: list[Span]) -> str:
    """`text` with each box of `spans` replaced by a space."""
    parts, pos = [], 0
    for start, end, _ in spans:
        parts += [text[pos:start], " "]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _openers(kinds: list[str]) -> re.Pattern:
    return re.compile("|".join(re.escape(k) for k in kinds))


def math_spans(text: str) -> list[str]:
    """Contents of the closed, non-empty math spans in order. An opener kind whose closer is
    missing after it is dropped from the search (`$` takes `$$` with it), so the scan stays
    linear."""
    kinds = list(_MATH_CLOSE)
    found, pos, pattern = [], 0, _openers(kinds)
    while m := pattern.search(text, pos):
        closer = _MATH_CLOSE[m.group()]
        end = text.find(closer, m.end())
        if end < 0:
            kinds = [k for k in kinds if k != m.group() and not (m.group() == "$" and k == "$$")]
            if not kinds:
                break
            pattern, pos = _openers(kinds), m.start()
            continue
        if text[m.end() : end].strip():
            found.append(text[m.end() : end].strip())
        pos = end + len(closer)
    return found
