"""The `lenient` extraction mode: anchored reading of free-form answers (policy: `extract`).

`lenient(completion) -> (answer or None, rule)` applies the rules the docstring of
`rewards.math.extract` lists, in order: the last `<answer>` block or the text after the
reasoning; boxes (the last group read together), a final "… = X" line, the last anchored phrase,
the block's whole text, the last math span, the last number. Bounded on hostile text: at most
`MAX_PHRASE_TRIES` phrases, each read at most `MAX_CLAUSE_CHARS` far. Not here: the strict mode,
deciding equality, natural-language numbers ("two").
"""

from __future__ import annotations

import re

from envs.tags import ANSWER_CLOSE, ANSWER_OPEN, TAG_RE
from rewards.math.spans import TRAILING, Span, after_reasoning, boxes, clean_answer, math_spans

MAX_PHRASE_TRIES = 8  # anchored phrases tried from the end before giving up
MAX_CLAUSE_CHARS = 2_000  # an anchored clause is read at most this far
MAX_EQUATION_RHS = 100  # "… = X" at the end counts only for a short X
MAX_WORD_ANSWER = 3  # an anchored answer without a number or math has at most this many words

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
_ANCHOR = re.compile(
    r"(?P<answer>final\s+answer\s*(?:is\b|:|=)?|\banswer\s*\**\s*(?:is\b|:|=)|####)"
    r"|(?P<connective>\b(?:therefore|thus|hence)\b)",
    re.I,
)
_IS = re.compile(r"\s+is\s+", re.I)
_CLAUSE_STOP = re.compile(
    r"[,;]?\s+(?:so|because|since|which|but|where|when|hence|thus|therefore|as)\b", re.I
)
_GROUP_GAP = re.compile(
    r"(?:\s|[,;$]|\\[,;]|\\q?quad|\\[()\[\]]|\b(?:and|or)\b|\\text\{\s*and\s*\})*"
)
_LETTER_OUTSIDE_COMMANDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]")


def _lenient_block(tail: str) -> str | None:
    """The last non-empty `<answer>` block: innermost opener before each closer, an unclosed
    last opener read to the end; None when there is none."""
    last_open, last_close = tail.rfind(ANSWER_OPEN), tail.rfind(ANSWER_CLOSE)
    if last_open > last_close:
        content = tail[last_open + len(ANSWER_OPEN) :]
        if content.strip():
            return content
        tail = tail[:last_open]
    end = len(tail)
    while (close := tail.rfind(ANSWER_CLOSE, 0, end)) >= 0:
        opened = tail.rfind(ANSWER_OPEN, 0, close)
        if opened < 0:
            return None
        content = tail[opened + len(ANSWER_OPEN) : close]
        if content.strip():
            return content
        end = opened
    return None


def _box_group(text: str, spans: list[Span]) -> tuple[str, str]:
    """The last run of boxes separated only by commas, `and`, `or`, spaces or `$`,
    read together (so `\\boxed{6} or \\boxed{7}` stays a hedge, never one of the two)."""
    first = len(spans) - 1
    while first > 0 and _GROUP_GAP.fullmatch(text, spans[first - 1][1], spans[first][0]):
        first -= 1
    values = list(dict.fromkeys(s[2].strip() for s in spans[first:]))
    return ", ".join(values), "boxes" if len(values) > 1 else "boxed"


def _clause_end(text: str, start: int) -> int:
    """End of the sentence starting at `start`: a newline or `.!?` + space outside math and
    braces, at most `MAX_CLAUSE_CHARS` on."""
    math, depth, j, stop = False, 0, start, min(len(text), start + MAX_CLAUSE_CHARS)
    while j < stop:
        ch = text[j]
        if ch == "$":
            math = not math
        elif ch == "\\" and text[j + 1 : j + 2] in ("(", "["):
            math = True
        elif ch == "\\" and text[j + 1 : j + 2] in (")", "]"):
            math = False
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif not math and depth == 0:
            if ch == "\n" and text[start:j].strip():
                return j
            if ch in ".!?" and (j + 1 == len(text) or text[j + 1].isspace()):
                return j
        j += 1
    return j


def _part_value(part: str) -> str:
    """A single math span in `part` is the value; otherwise the part itself."""
    spans = math_spans(part)
    return spans[0] if len(spans) == 1 else part


def _has_value(part: str) -> bool:
    return any(ch.isdigit() for ch in part) or bool(math_spans(part))


def _short(part: str) -> bool:
    """A few words without a number may still be an answer ("east", "(B)")."""
    return 0 < len(part.split()) <= MAX_WORD_ANSWER


def _clause_answer(clause: str, connective: bool) -> str | None:
    """The answer an anchored clause states, or None (rule 3 of `rewards.math.extract`)."""
    clause = clean_answer(clause.strip().lstrip("*:=,").strip())
    stop = _CLAUSE_STOP.search(clause)
    clause = clean_answer(clause[: stop.start()]) if stop else clause
    pieces = _IS.split(clause)
    if len(pieces) > 1:
        before, after = " is ".join(pieces[:-1]), pieces[-1]
        if _has_value(after):
            return _part_value(after)
        if _has_value(before):
            return _part_value(before)
        return after if not connective and _short(after) else None
    if connective or not (_has_value(clause) or _short(clause)):
        return None
    return _part_value(clause)


def _phrase(text: str) -> str | None:
    """The answer of the last anchored phrase that states one (at most `MAX_PHRASE_TRIES`)."""
    anchors = list(_ANCHOR.finditer(text))[-MAX_PHRASE_TRIES:]
    for m in reversed(anchors):
        clause = text[m.end() : _clause_end(text, m.end())]
        if _ANCHOR.match(clause.strip()):
            continue  # "Final Answer: The final answer is …": the later anchor is read
        answer = _clause_answer(clause, m.group("connective") is not None)
        if answer and clean_answer(answer):
            return answer
    return None


def _final_equation(text: str) -> str | None:
    """X of a last line ending in "… = X" where X is short, has a digit and no variable."""
    line = text.rstrip(TRAILING + "$").rpartition("\n")[2]
    at = line.rfind("=")
    if at <= 0 or line[at - 1] in "<>!=":
        return None
    rhs = line[at + 1 :].strip().strip("$").strip()
    if not rhs or len(rhs) > MAX_EQUATION_RHS or not any(ch.isdigit() for ch in rhs):
        return None
    return None if _LETTER_OUTSIDE_COMMANDS.search(rhs) else rhs


def _last_number(text: str) -> str | None:
    """The last number: found from the last digit backwards (`str.rfind`, not a full scan)."""
    end = max(text.rfind(d) for d in "0123456789")
    if end < 0:
        return None
    start = end
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] in ",./-"):
        start -= 1
    found = list(_NUMBER.finditer(text, start, end + 1))
    return found[-1].group() if found else None


def lenient(completion: str) -> tuple[str | None, str]:
    """(answer or None, rule) of `completion` read leniently; the answer is not yet cleaned."""
    tail, cut = after_reasoning(completion)
    if cut and not tail.strip():
        return None, "unclosed-think"
    block = _lenient_block(tail)
    text = TAG_RE.sub(" ", tail if block is None else block)
    spans, _ = boxes(text)
    if spans:
        return _box_group(text, spans)
    equation = _final_equation(text)
    if equation is not None:
        return equation, "equation"
    phrase = _phrase(text)
    if phrase is not None:
        return phrase, "phrase"
    if block is not None:
        return text, "answer"
    spans = math_spans(text)
    if spans:
        return spans[-1], "math"
    number = _last_number(text)
    return (number, "number") if number else (None, "no-answer")
