"""Type-directed comparison of two answer trees, generic over how two scalars are compared.

`trees_equivalent(gold, pred, scalars)` walks the structure of both answers (its docstring
lists the type rules, in the order they apply) and compares scalar leaves of matching shape with
a back end. Labels and chains are read by `rewards.math.labels`, sets of reals by
`rewards.math.sets`, units, percentages and degrees by `rewards.math.units`.

Two scalar back ends exist: `EXACT` (this module: `Fraction`s, plus a float spot check from
`rewards.math.numeric` that may answer "different" in-process; otherwise it raises
`NeedsSymbolic`) and the sympy one in `rewards.math.symbolic`; decimals follow the rounding
policy of `decimal_matches`.
Source: the type rules and the rounding policy are this project's; no third-party grader was
copied.
It deliberately does not compare across types (a finite set never equals a tuple, a value never
equals an interval that contains it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from rewards.math.exact import NeedsSymbolic, NotExact, exact_value
from rewards.math.labels import equations_equal, reading
from rewards.math.numeric import clearly_different
from rewards.math.sets import is_proper, set_reading, sets_equal
from rewards.math.trees import SCALAR_KINDS
from rewards.math.units import MARKS, marked_equal

__all__ = [
    "EXACT",
    "MIN_SIGNIFICANT",
    "NeedsSymbolic",
    "ScalarBackend",
    "decimal_matches",
    "decimal_text",
    "trees_equivalent",
]

MIN_SIGNIFICANT = 3
_COLLECTIONS = ("list", "set", "pm")
_EQUATIONS = ("eq", "chain")


@dataclass(frozen=True)
class ScalarBackend:
    scalar: Callable[[tuple, tuple], bool]
    equation: Callable[[tuple, tuple], bool]


def decimal_text(node) -> str | None:
    """The literal text of a (possibly negated) plain decimal like `-0.25`, else None."""
    sign = ""
    if node[0] == "neg":
        sign, node = "-", node[1]
    if node[0] == "dec" and "e" not in node[1].lower():
        return sign + node[1]
    return None


def decimal_matches(text: str, value) -> bool:
    """Rounding policy: does the decimal `text` stand for `value`?

    Yes when it has at least `MIN_SIGNIFICANT` significant digits and is `value` rounded
    half-away-from-zero or truncated to the decimal's own number of places: 0.3333 and 0.333
    match 1/3, 0.33 and 0.3334 do not, 0.667 matches 2/3. Two decimals, or a decimal and a
    finite-decimal value, must be exactly equal.
    """
    if isinstance(value, float):
        return False
    if Fraction(text) == value:
        return True
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    if len(digits) < MIN_SIGNIFICANT:
        return False
    places = len(text.partition(".")[2])
    scaled = value * 10**places
    shown = Fraction(text) * 10**places
    rounded = math.floor(abs(scaled) + Fraction(1, 2)) * (1 if scaled >= 0 else -1)
    truncated = math.trunc(scaled)
    return shown in (rounded, truncated)


def _exact_scalar(a, b) -> bool:
    try:
        va, vb = exact_value(a), exact_value(b)
    except NotExact:
        if decimal_text(a) is None and decimal_text(b) is None and clearly_different(a, b):
            return False  # floats at spot points already disagree: no need for sympy
        raise NeedsSymbolic from None
    if va == vb:
        return True
    da, db = decimal_text(a), decimal_text(b)
    if (da is None) == (db is None):
        return False
    return decimal_matches(da, vb) if da is not None else decimal_matches(db, va)


def _exact_equation(a, b) -> bool:
    raise NeedsSymbolic


EXACT = ScalarBackend(scalar=_exact_scalar, equation=_exact_equation)


def _items(node) -> list:
    """Items of a multiple-answer node (`pm` expands to its two values); [node] otherwise."""
    if node[0] == "pm":
        return [("add", (node[1], node[2])), ("add", (node[1], ("neg", node[2])))]
    if node[0] in ("list", "set"):
        return [i for item in node[1] for i in _items(item)]
    return [node]


def _as_sets_equal(gold_items, pred_items, backend) -> bool:
    def contained(xs, ys) -> bool:
        return all(any(trees_equivalent(x, y, backend) for y in ys) for x in xs)

    return contained(pred_items, gold_items) and contained(gold_items, pred_items)


def _seq_equal(xs, ys, backend) -> bool:
    return len(xs) == len(ys) and all(trees_equivalent(x, y, backend) for x, y in zip(xs, ys))


def _labelled_values(node):
    """Values of a list of labelled values (`x = 1, y = 2`), in order; None otherwise."""
    if node[0] != "list" or not all(i[0] in _EQUATIONS for i in node[1]):
        return None
    readings = [reading(i) for i in node[1]]
    return None if None in readings else tuple(r[1] for r in readings)


def _collections(gold, pred, backend) -> bool:
    for tup, other in ((gold, pred), (pred, gold)):
        values = _labelled_values(other) if tup[0] == "tuple" else None
        if values is not None:
            return _seq_equal(tup[1], values, backend)
    return _as_sets_equal(_items(gold), _items(pred), backend)


def _flat_vector(node):
    """Entries of a 1×n / n×1 matrix, or of a tuple; None for other shapes."""
    if node[0] == "tuple":
        return node[1]
    rows = node[1]
    if len(rows) == 1 or all(len(r) == 1 for r in rows):
        return tuple(x for r in rows for x in r)
    return None


def _matrices(a, b, backend) -> bool:
    if a[0] == b[0] == "matrix":
        return len(a[1]) == len(b[1]) and all(
            _seq_equal(ra, rb, backend) for ra, rb in zip(a[1], b[1])
        )
    va, vb = _flat_vector(a), _flat_vector(b)
    return va is not None and vb is not None and _seq_equal(va, vb, backend)


def _relations(a, b, backend) -> bool:
    return a[0] == b[0] == "rel" and a[1] == b[1] and _seq_equal(a[2], b[2], backend)


def _ratios(gold, pred, backend) -> bool:
    """`a:b` is the fraction a/b; longer ratios are equal when proportional (`2:4:6 = 1:2:3`)."""
    same = lambda x, y: trees_equivalent(x, y, backend)
    if gold[0] == pred[0] == "ratio":
        a, b = gold[1], pred[1]
        if len(a) != len(b):
            return False
        if len(a) == 2:
            return same(("div", a[0], a[1]), ("div", b[0], b[1]))
        return all(same(("mul", (a[i], b[0])), ("mul", (b[i], a[0]))) for i in range(1, len(a)))
    ratio, other = (gold, pred) if gold[0] == "ratio" else (pred, gold)
    if len(ratio[1]) != 2 or other[0] not in SCALAR_KINDS:
        return False
    return same(("div", ratio[1][0], ratio[1][1]), other)


_PAIRS: dict[tuple[str, str], Callable] = {
    ("tuple", "tuple"): lambda a, b, be: _seq_equal(a[1], b[1], be),
    ("matrix", "matrix"): _matrices,
    ("matrix", "tuple"): _matrices,
    ("tuple", "matrix"): _matrices,
}


def trees_equivalent(gold, pred, backend: ScalarBackend) -> bool:
    """Structural equivalence of two answer trees; may raise NeedsSymbolic.

    `backend.scalar(a, b)` / `backend.equation(a, b)` are called only on leaves of matching
    shape. In order:

    - labelled values, chains and equations (`rewards.math.labels`): `x = 5` is 5 against a
      value, two equations are compared as equations;
    - sets of reals (`rewards.math.sets`) when either side is an interval, union, relation or
      set-builder: `-1 < x < 1` = `(-1, 1)`; a 2-tuple `(a, b)` reads as an open interval here;
      two relations that are not sets of one variable need equal operators and operands;
    - multiple answers (`1, 2`, `x = 1 or x = 2`, `\\{1, 2\\}`, `3 \\pm \\sqrt2`) compare as
      sets: every predicted item must equal some gold item and every gold item some predicted
      item (duplicates collapse); one extra or missing item fails, never "any candidate"; a
      list of labelled values `x = 1, y = 2` against a tuple compares in order;
    - units, percentages, degrees (`rewards.math.units`);
    - ratios: `a:b` is a/b, longer ratios are equal when proportional;
    - scalars go to `backend.scalar`;
    - tuples are ordered and length-checked; matrices compare shape and entries (a 1×n or n×1
      matrix also equals an n-tuple); anything else of different types is unequal.
    """
    gk, pk = gold[0], pred[0]
    same = lambda a, b: trees_equivalent(a, b, backend)
    if gk in _EQUATIONS or pk in _EQUATIONS:
        return equations_equal(gold, pred, same, backend.equation)
    if is_proper(gold) or is_proper(pred):
        if gk == pk == "rel" and (set_reading(gold) is None or set_reading(pred) is None):
            return _relations(gold, pred, backend)
        return sets_equal(gold, pred, same)
    if gk in _COLLECTIONS or pk in _COLLECTIONS:
        return _collections(gold, pred, backend)
    if gk in MARKS or pk in MARKS:
        return marked_equal(gold, pred, same)
    if "ratio" in (gk, pk):
        return _ratios(gold, pred, backend)
    if gk in SCALAR_KINDS and pk in SCALAR_KINDS:
        return backend.scalar(gold, pred)
    handler = _PAIRS.get((gk, pk))
    return handler(gold, pred, backend) if handler else False
