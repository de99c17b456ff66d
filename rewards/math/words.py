"""Words around answers: word answers, a number in short prose, unit words after a number.

Pure string functions used by `rewards.math.answers` (after `normalize`):

- `text_key(text)`: the comparison key of a word answer: `\\text{…}` unwrapped, case-folded,
  whitespace collapsed, surrounding punctuation and brackets dropped (`\\text{North}` = `north`,
  `\\text{(B)}` = `B`);
- `prose_number(text)`: the single number of a short prose answer (`18 clips`,
  `The answer is 18`, `Total: 18 dollars`), or None. Refused when there is any other number or
  math (a `:` or `=` only after a lead-in word such as "Answer"), letters stuck to the number
  (`ab18`, `18th`), more than `MAX_PROSE_WORDS` words, a one-letter word that is not a unit (`18 x`), or a
  word that hedges, negates or compares (`STOP_WORDS`: `not 18`, `18 or more`, `about 18`);
- `unit_suffix(text, gold_unit)`: `(value, unit)` when the text is a value followed by known
  unit words (`18 cm`, `2.5 square feet`) or by the gold's own unit words, else None.
It does not decide when these readings apply (only against a plain-number or constant gold).
"""

from __future__ import annotations

import re

from rewards.math.units import is_unit_text, read_unit

MAX_PROSE_WORDS = 8
STOP_WORDS = frozenset(
    {
        "not",
        "no",
        "never",
        "nor",
        "neither",
        "either",
        "or",
        "and",
        "but",
        "than",
        "more",
        "less",
        "fewer",
        "least",
        "most",
        "about",
        "around",
        "approximately",
        "approx",
        "roughly",
        "nearly",
        "almost",
        "maybe",
        "perhaps",
        "probably",
        "possibly",
        "between",
        "except",
        "without",
        "plus",
        "minus",
        "times",
        "over",
        "under",
        "above",
        "below",
        "up",
        "wrong",
        "incorrect",
        "false",
        "isn't",
        "aren't",
        "wasn't",
        "can't",
        "cannot",
        "unless",
        "if",
        "impossible",
        "undefined",
        "none",
        "range",
        "from",
        "to",
        "until",
        "estimate",
        "estimated",
        "guess",
    }
)
_LEAD_INS = frozenset({"answer", "ans", "total", "result", "solution", "sum", "value", "final"})
_TEXT = re.compile(r"\\(?:text|unit)\{([^{}]*)\}")
_PROSE_TOKEN = re.compile(r"-?[0-9]+(?:\.[0-9]+)?|[A-Za-z][A-Za-z'-]*|[:=]|\S", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_GLUED = re.compile(r"[A-Za-z][0-9]|[0-9][A-Za-z]", re.ASCII)
_UNIT_SUFFIX = re.compile(r"(.*?[0-9})])(\s*)([A-Za-z][A-Za-z ^0-9/.-]*)", re.ASCII)


def text_key(text: str) -> str:
    """Comparison key of a word answer (module docstring)."""
    s = _TEXT.sub(r" \1 ", text).casefold()
    return " ".join(s.split()).strip(" .,;:!?()[]{}")


def prose_number(text: str) -> str | None:
    """The one number of a short prose answer, or None (module docstring)."""
    text = _TEXT.sub(r" \1 ", text)
    tokens = _PROSE_TOKEN.findall(text)
    numbers = [t for t in tokens if _NUMBER.fullmatch(t)]
    words = [t for t in tokens if t[0].isalpha()]
    if len(numbers) != 1 or not words or len(words) > MAX_PROSE_WORDS:
        return None
    if _GLUED.search(text):  # `ab18`, `18th`: letters stuck to the number are not prose
        return None
    at = tokens.index(numbers[0])
    for i, token in enumerate(tokens):
        if token in (":", "=") and 0 < i < at and tokens[i - 1].casefold() in _LEAD_INS:
            continue
        if token[0].isalpha():
            low = token.casefold()
            if low in STOP_WORDS or (len(token) == 1 and not is_unit_text(token)):
                return None
        elif token != numbers[0] and not (token == "." and i == len(tokens) - 1):
            return None
    return numbers[0]


def unit_suffix(text: str, gold_unit: str | None = None) -> tuple[str, str] | None:
    """`(value, unit)` for a value followed by known unit words, or by the words of the gold's
    own unit `gold_unit` (`18 clips` against `18\\text{ clips}`), else None (docstring)."""
    m = _UNIT_SUFFIX.fullmatch(text)
    if m is None:
        return None
    value, space, unit = m.group(1), m.group(2), m.group(3).strip()
    if not space and len(unit) < 2:  # `5m`, `2h` stay products of a number and a letter
        return None
    if any(w.casefold() in STOP_WORDS for w in unit.split()):
        return None
    if is_unit_text(unit) or (gold_unit and read_unit(unit).key == read_unit(gold_unit).key):
        return value, unit
    return None
