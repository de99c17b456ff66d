"""Type-directed comparison of two answer trees, generic over how two scalars are compared.

`trees_equivalent(gold, pred, scalars)` walks the structure of both answers (its docstring
lists the type rules) and compares scalar leaves of matching shape with a back end.

Two scalar back ends exist: `EXACT` (this module: `Fraction`s, plus a float spot check from
`rewards.math.numeric` that may answer "different" in-process; otherwise it raises
`NeedsSymbolic`) and the sympy one in `rewards.math.symbolic`; decimals follow the rounding
policy of `decimal_matches`.
Source: the type rules and the rounding policy are this project's; no third-party grader was
copied.
It deliberately does not compare across types (a set never equals a tuple).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from rewards.math.exact import NotExact, exact_value
from rewards.math.numeric import clearly_different

MIN_SIGNIFICANT = 3
_COLLECTIONS = ("list", "set", "pm")


class NeedsSymbolic(Exception):
    """The exact back end cannot decide this pair; hand it to sympy."""


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


def _as_interval(node):
    if node[0] == "tuple" and len(node[1]) == 2:
        return ("interval", False, node[1][0], node[1][1], False)
    return node


def _intervals(a, b, backend) -> bool:
    a, b = _as_interval(a), _as_interval(b)
    if a[0] != "interval" or b[0] != "interval":
        return False
    return a[1] == b[1] and a[4] == b[4] and _seq_equal(a[2:4], b[2:4], backend)


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


def _equation_vs_value(eq, value, backend) -> bool:
    lhs, rhs = eq[1], eq[2]
    return lhs[0] == "sym" and trees_equivalent(rhs, value, backend)


def _relations(a, b, backend) -> bool:
    return a[1] == b[1] and _seq_equal(a[2], b[2], backend)


_SCALAR_KINDS = (
    "int",
    "dec",
    "sym",
    "const",
    "add",
    "neg",
    "mul",
    "div",
    "pow",
    "fact",
    "root",
    "func",
)
_PAIRS: dict[tuple[str, str], Callable] = {
    ("tuple", "tuple"): lambda a, b, be: _seq_equal(a[1], b[1], be),
    ("interval", "interval"): _intervals,
    ("interval", "tuple"): _intervals,
    ("tuple", "interval"): _intervals,
    ("union", "union"): lambda a, b, be: _as_sets_equal(a[1], b[1], be),
    ("matrix", "matrix"): _matrices,
    ("matrix", "tuple"): _matrices,
    ("tuple", "matrix"): _matrices,
    ("eq", "eq"): lambda a, b, be: be.equation(a, b),
    ("rel", "rel"): _relations,
}


def trees_equivalent(gold, pred, backend: ScalarBackend) -> bool:
    """Structural equivalence of two answer trees; may raise NeedsSymbolic.

    `backend.scalar(a, b)` / `backend.equation(a, b)` are called only on leaves of matching shape:

    - multiple answers (`1, 2`, `x = 1 or x = 2`, `\\{1, 2\\}`, `3 \\pm \\sqrt2`) compare as
      sets: every predicted item must equal some gold item and every gold item some predicted
      item (duplicates collapse); one extra or missing item fails, never "any candidate".
    - tuples are ordered and length-checked; a 2-tuple `(a, b)` also reads as an open interval;
    - intervals compare ends and open/closed flags; unions of intervals compare as sets of parts;
    - matrices compare shape and entries (a 1×n or n×1 matrix also equals an n-tuple);
    - an equation `y = f` against a bare value compares `f` with it when `y` is a single symbol;
      equation against equation is delegated to `backend.equation`;
    - chained relations (`1 < x \\le 2`) need equal operators and pairwise-equal operands.
    """
    gk, pk = gold[0], pred[0]
    if gk in _COLLECTIONS or pk in _COLLECTIONS:
        return _as_sets_equal(_items(gold), _items(pred), backend)
    if gk in _SCALAR_KINDS and pk in _SCALAR_KINDS:
        return backend.scalar(gold, pred)
    if gk == "eq" and pk in _SCALAR_KINDS:
        return _equation_vs_value(gold, pred, backend)
    if pk == "eq" and gk in _SCALAR_KINDS:
        return _equation_vs_value(pred, gold, backend)
    handler = _PAIRS.get((gk, pk))
    return handler(gold, pred, backend) if handler else False
