"""Reading a (gold, pred) pair of normalised answers into two answer trees, with the few
readings that depend on the gold.

`read_pair(gold, pred)` parses both sides (`parse_answer` + `guard`) and returns a `Reading`:
either a decided verdict (`equal` is True/False, with the method) or the two trees and the texts
they were read from, for `rewards.math.compare`. In order:

1. word answers: when either side is a `\\text{…}` word answer, does not parse as math, or is
   yes/no/true/false/none, the two `words.text_key`s are compared case-insensitively
   (`\\text{North}` = `north`, `\\text{yes}` = `Yes`); equal keys decide True;
2. an unparsable gold decides False;
3. against a gold without free symbols, a value followed by known unit words (or by the gold's
   own unit words) is read with that unit (`18 cm` → 18 cm, `3 feet`, `18 clips` against
   `18\\text{ clips}`), so units keep mattering (`5 m` ≠ `5 cm`);
4. against a plain-number gold (`18`), a pred that is not math, or reads as math only through
   letter products (`It is 18` = I·t·i·s·18, which can never equal a number), but is short
   prose with exactly one number is read as that number (`18 clips`, `The answer is 18`,
   `18 dollars`); words are never dropped against any other gold, nor when they hedge or hold
   another number (`words.prose_number`);
5. an unparsable pred decides False.
It is deterministic and has no state, so a worker process reading the same texts gets the
same trees. It does not extract answers from completions (`normalize.extract_answer` does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rewards.math.exact import guard
from rewards.math.parse import ParseError, TooBig, parse_answer
from rewards.math.trees import symbols
from rewards.math.words import prose_number, text_key, unit_suffix

PLAIN_NUMBER = re.compile(r"-?[0-9]{1,50}(?:\.[0-9]{1,50})?")  # whole answer, via fullmatch
_SIMPLE_FRACTION = re.compile(
    r"(-?)(?:\\frac\{([0-9]{1,20})\}\{([0-9]{1,20})\}|([0-9]{1,20})/([0-9]{1,20}))"
)
PARSE_CACHE_SIZE = 65_536
_WORD_ANSWERS = frozenset({"yes", "no", "true", "false", "none"})
_MAX_SUFFIX_CHARS = 200


@dataclass(frozen=True)
class Reading:
    """A decided verdict (`equal` True/False and `method`), or the two trees (`equal` None)."""

    equal: bool | None
    method: str = ""
    gold: tuple | None = None
    pred: tuple | None = None
    gold_text: str = ""
    pred_text: str = ""


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def parse_checked(text: str):
    """(tree, None) or (None, "parse" | "guard"). Trees are immutable tuples, so results are
    cached (a gold is read once per group of samples); plain fractions skip the parser."""
    m = _SIMPLE_FRACTION.fullmatch(text)
    if m:
        num, den = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
        tree = ("div", ("int", int(num)), ("int", int(den)))
        return (("neg", tree) if m.group(1) else tree), None
    try:
        tree = parse_answer(text)
        guard(tree)
        return tree, None
    except TooBig:
        return None, "guard"
    except (ParseError, RecursionError):
        return None, "parse"


def _wordy(text: str, tree) -> bool:
    return tree is None or "\\text{" in text or text.casefold() in _WORD_ANSWERS


def _with_unit(pred: str, pred_tree, gold_tree):
    if pred_tree is not None and not symbols(pred_tree):
        return None
    if len(pred) > _MAX_SUFFIX_CHARS or "\\unit{" in pred:
        return None
    split = unit_suffix(pred, gold_tree[2] if gold_tree[0] == "unit" else None)
    if split is None:
        return None
    text = f"{split[0]}\\unit{{{split[1]}}}"
    tree, _ = parse_checked(text)
    return None if tree is None else (text, tree)


def read_pair(gold: str, pred: str) -> Reading:
    """The trees of a normalised (gold, pred) pair, or a verdict (module docstring)."""
    gold_tree, gold_why = parse_checked(gold)
    pred_tree, pred_why = parse_checked(pred)
    if _wordy(gold, gold_tree) or _wordy(pred, pred_tree):
        key = text_key(gold)
        if key == text_key(pred) and re.search("[a-z]", key):
            return Reading(True, "string")
    if gold_tree is None:
        return Reading(False, gold_why)
    if not symbols(gold_tree):
        rewritten = _with_unit(pred, pred_tree, gold_tree)
        if rewritten is not None:
            pred, pred_tree = rewritten
    prose = pred_tree is None and pred_why == "parse"
    if (prose or (pred_tree is not None and symbols(pred_tree))) and PLAIN_NUMBER.fullmatch(gold):
        number = prose_number(pred)
        if number is not None:
            pred, (pred_tree, pred_why) = number, parse_checked(number)
    if pred_tree is None:
        return Reading(False, pred_why)
    return Reading(None, "", gold_tree, pred_tree, gold, pred)
