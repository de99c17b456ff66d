"""Tokeniser for normalised math answers, with the parser's error types and size limits.

`tokenize(text)` splits a string from `rewards.math.normalize.normalize` into `(kind, text)`
tokens: `num` (ASCII integers, decimals, e-notation), `cmd` (`\\frac`, `\\{`, `\\%` …), `word`
(one letter or a known function/constant name), `text` (a `\\text{…}` word answer kept by
`normalize`, or a run of three or more letters that is not made of known names, like `Monday`),
`unit` (the content of a `\\unit{…}` written by `normalize`), `op`, and `begin`/`end` for LaTeX
environments. A `text` token is not math: the parser refuses it except as a label in front of
`=` (`\\text{Area} = 5`), so word answers compare as words, never as letter products.
Only ASCII digits are digits (`re.ASCII`): digits of other scripts are not numbers here.
Character and token limits (`ParseLimits`) raise `TooBig` before any parsing.
Source: written here from scratch (one `re` alternation, longest match first).
It deliberately does not know precedence or build trees (`rewards.math.parse` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ParseError(ValueError):
    """The text is not in the supported grammar."""


class TooBig(ValueError):
    """The text exceeds a size limit and must not reach sympy (denial-of-service guard)."""


@dataclass(frozen=True)
class ParseLimits:
    max_chars: int = 600
    max_tokens: int = 300
    max_depth: int = 40
    max_digits: int = 60


FUNCS = (
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "sin",
    "cos",
    "tan",
    "sec",
    "csc",
    "cot",
    "log",
    "ln",
    "exp",
    "sqrt",
    "abs",
)
_WORDS = FUNCS + ("infty", "inf", "pi", "oo")
_TOKEN = re.compile(
    r"""
  (?P<begin>\\(?:begin|end)\{[A-Za-z]+\*?\})
 |(?P<text>\\text\{[^{}]*\})
 |(?P<unit>\\unit\{[^{}]*\})
 |(?P<num>\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+(?![A-Za-z])|\d+)
 |(?P<cmd>\\[A-Za-z]+|\\[{}|\\%])
 |(?P<word>[A-Za-z]+)
 |(?P<op><=|>=|!=|\*\*|[-+*/^_()\[\]{}=,!|&<>:'])
 |(?P<space>\s+)
""",
    re.X | re.ASCII,
)


def tokenize(text: str, limits: ParseLimits = ParseLimits()) -> list[tuple[str, str]]:
    """`(kind, text)` tokens; kinds: num, cmd, word, text, unit, op, begin, end.
    Raises ParseError/TooBig."""
    if len(text) > limits.max_chars:
        raise TooBig(f"answer has {len(text)} characters (limit {limits.max_chars})")
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"unexpected character {text[pos]!r} at position {pos}")
        kind, value = m.lastgroup, m.group()
        pos = m.end()
        if kind == "word":
            tokens.extend(_split_word(value))
        elif kind in ("text", "unit"):
            tokens.append((kind, value[value.index("{") + 1 : -1].strip()))
        elif kind == "begin":
            tokens.append((value[1 : value.index("{")], value[value.index("{") + 1 : -1]))
        elif kind == "op" and value == "**":
            tokens.append(("op", "^"))
        elif kind != "space":
            tokens.append((kind, value))
        if len(tokens) > limits.max_tokens:
            raise TooBig(f"answer has more than {limits.max_tokens} tokens")
    return tokens


def _split_word(word: str) -> list[tuple[str, str]]:
    """`sinx` → sin, x; `xy` → x, y; known names stay whole. Three or more letters in a row that
    are not a known name make one `text` token (`Monday`, `yes`), so it compares as a word
    rather than as a commutative product of letters."""
    out, run, rest = [], 0, word
    while rest:
        name = next((w for w in _WORDS if rest.startswith(w)), rest[0])
        run = run + 1 if len(name) == 1 else 0
        if run >= 3:
            return [("text", word)]
        out.append(("word", name))
        rest = rest[len(name) :]
    return out
