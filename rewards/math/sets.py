"""Sets of real numbers: intervals, unions, finite sets, relations and set-builder notation read
as one kind of answer, so `-1 < x < 1`, `|x| < 1`, `\\{x \\mid -1 < x < 1\\}` and `(-1, 1)` agree.

`set_reading(node)` gives `(intervals, points)`: intervals as `(lo_closed, lo, hi, hi_closed)`
with tree endpoints, points as trees; None when the node is not a set of reals. Relations in one
variable are solved when they are linear with exact coefficients (`2x + 1 > 3`), also inside an
absolute value with two sides (`|x - 2| \\le 1`, `|x| > 3`); `x \\ne c` is the reals without c;
a plain variable keeps symbolic ends (`x > \\sqrt2`). A 2-tuple reads as an open interval here.

`sets_equal(gold, pred, same)` compares two readings: when every end and point is an exact
rational or ±∞ both are brought to a canonical form (sorted, overlapping or touching pieces
merged, points inside pieces absorbed: `[0,1] \\cup [1,2] = [0,2]`,
`\\{1,3\\} \\cup \\{2\\} = \\{1,2,3\\}`, `(0,1) \\cup \\{1\\} \\cup (1,2) = (0,2)`) and compared
exactly; otherwise pieces and points are matched as sets with `same` (no merging).
`x > 2 \\land x < 5` (conditions that must all hold, also in a set-builder) is the
intersection, `A \\setminus B` the difference, both computed on exact canonical forms only.
An infinite end is always open. It does not complement or handle two variables.
"""

from __future__ import annotations

from fractions import Fraction

from rewards.math.exact import NotExact, exact_value
from rewards.math.tokens import TooBig
from rewards.math.trees import SCALAR_KINDS, number_tree, symbols

_OO = ("const", "oo")
_MINUS_OO = ("neg", _OO)
PROPER = ("interval", "union", "rel", "builder", "and", "minus")
_INF = float("inf")


def is_proper(node) -> bool:
    """Whether the node can only mean a set of reals (not a point, tuple or list of values)."""
    if node[0] == "list":
        return all(item[0] in PROPER for item in node[1])
    return node[0] in PROPER


def _linear(node):
    """`(a, b)` with node = a·v + b for its one symbol v, exact; None otherwise."""
    kind = node[0]
    if not symbols(node):
        value = exact_value(node)
        return None if isinstance(value, float) else (Fraction(0), value)
    if kind == "sym":
        return Fraction(1), Fraction(0)
    if kind == "neg":
        inner = _linear(node[1])
        return inner and (-inner[0], -inner[1])
    if kind == "add":
        parts = [_linear(t) for t in node[1]]
        if any(p is None for p in parts):
            return None
        return sum(p[0] for p in parts), sum(p[1] for p in parts)
    if kind == "mul":
        parts = [_linear(t) for t in node[1]]
        if any(p is None for p in parts) or sum(p[0] != 0 for p in parts) > 1:
            return None
        a, b = Fraction(1), Fraction(1)
        varying = [p for p in parts if p[0] != 0]
        for p in parts:
            if p[0] == 0:
                a, b = a * p[1], b * p[1]
        if varying:
            return a * varying[0][0], a * varying[0][1]
        return Fraction(0), b
    if kind == "div" and not symbols(node[2]):
        inner, den = _linear(node[1]), exact_value(node[2])
        if inner is None or isinstance(den, float) or den == 0:
            return None
        return inner[0] / den, inner[1] / den
    return None


def _solve(lower, upper, a, b):
    """Bounds on a·v + b (each `(tree, closed)` or None for ∞) → the interval of v."""
    if a == 0:
        return None

    def end(bound):
        if bound is None:
            return None
        value = exact_value(bound[0])
        if isinstance(value, float):
            return None
        return number_tree((value - b) / a), bound[1]

    lo, hi = end(lower), end(upper)
    if (lower is not None and lo is None) or (upper is not None and hi is None):
        return None
    if a < 0:
        lo, hi = hi, lo
    return (
        lo[1] if lo else False,
        lo[0] if lo else _MINUS_OO,
        hi[0] if hi else _OO,
        hi[1] if hi else False,
    )


def _bounds(ops, operands, k):
    """Lower and upper bounds `(tree, closed)` of operand k in a `<`/`<=` chain."""
    lower = (operands[k - 1], ops[k - 1] == "<=") if k > 0 else None
    upper = (operands[k + 1], ops[k] == "<=") if k + 1 < len(operands) else None
    return lower, upper


def _relation(node):
    ops, operands = node[1], node[2]
    varying = [k for k, o in enumerate(operands) if symbols(o)]
    if len(varying) != 1 or len({v for o in operands for v in symbols(o)}) != 1:
        return None
    k = varying[0]
    x = operands[k]
    if any(o[0] not in SCALAR_KINDS for o in operands):
        return None
    if ops == ("!=",) and x[0] == "sym":
        c = operands[1 - k]
        return [(False, _MINUS_OO, c, False), (False, c, _OO, False)], []
    if any(op not in ("<", "<=") for op in ops):
        return None
    lower, upper = _bounds(ops, operands, k)
    if x[0] == "sym":
        return [(lower[1] if lower else False, lower[0] if lower else _MINUS_OO,
                 upper[0] if upper else _OO, upper[1] if upper else False)], []  # fmt: skip
    if x[:2] == ("func", "abs") and len(operands) == 2:
        return _absolute(x[2][0], lower, upper)
    linear = _linear(x)
    if linear is None:
        return None
    piece = _solve(lower, upper, *linear)
    return None if piece is None else ([piece], [])


def _absolute(inner, lower, upper):
    linear = _linear(inner)
    if linear is None:
        return None
    if upper is not None:  # |u| < r  ⇔  -r < u < r
        piece = _solve((("neg", upper[0]), upper[1]), upper, *linear)
        return None if piece is None else ([piece], [])
    left = _solve(None, (("neg", lower[0]), lower[1]), *linear)  # |u| > r ⇔ u < -r or u > r
    right = _solve(lower, None, *linear)
    return None if left is None or right is None else ([left, right], [])


def set_reading(node):
    """`(intervals, points)` of a set of reals, or None (module docstring)."""
    kind = node[0]
    try:
        if kind == "interval":
            return [node[1:]], []
        if kind == "tuple" and len(node[1]) == 2:
            return [(False, node[1][0], node[1][1], False)], []
        if kind == "set":
            return ([], list(node[1])) if all(i[0] in SCALAR_KINDS for i in node[1]) else None
        if kind == "rel":
            return _relation(node)
        if kind == "builder":
            return set_reading(node[2]) if node[2][0] in ("rel", "and") else None
        if kind in ("and", "minus"):
            return _combined(node)
        if kind in ("union", "list"):
            intervals, points = [], []
            for part in node[1]:
                reading = set_reading(part)
                if reading is None:
                    return None
                intervals += reading[0]
                points += reading[1]
            return intervals, points
    except (NotExact, TooBig, ZeroDivisionError):
        return None
    return None


def canonical(reading):
    """Sorted, merged exact pieces `(lo, lo_closed, hi, hi_closed)`, or None if not exact."""
    intervals, points = reading
    try:
        pieces = [(exact_value(lo), lc, exact_value(hi), hc) for lc, lo, hi, hc in intervals]
        pieces += [(v, True, v, True) for v in (exact_value(p) for p in points)]
    except (NotExact, TooBig, ZeroDivisionError):
        return None
    if any(isinstance(v, float) and v != v for p in pieces for v in (p[0], p[2])):
        return None
    return merge(pieces)


def merge(pieces) -> tuple:
    """Exact pieces `(lo, lo_closed, hi, hi_closed)` sorted, empty ones dropped, overlapping or
    touching ones merged."""
    cleaned = []
    for lo, lc, hi, hc in pieces:
        lc, hc = lc and lo != -float("inf"), hc and hi != float("inf")
        if lo < hi or (lo == hi and lc and hc):
            cleaned.append((lo, lc, hi, hc))
    cleaned.sort(key=lambda p: (p[0], not p[1]))
    merged: list = []
    for lo, lc, hi, hc in cleaned:
        if merged:
            mlo, mlc, mhi, mhc = merged[-1]
            if lo < mhi or (lo == mhi and (mhc or lc)):
                if hi > mhi or (hi == mhi and hc):
                    mhi, mhc = hi, hc if hi > mhi else (mhc or hc)
                merged[-1] = (mlo, mlc, mhi, mhc)
                continue
        merged.append((lo, lc, hi, hc))
    return tuple(merged)


def _combined(node):
    """Reading of an intersection (`and`) or difference (`minus`); exact ends only."""
    parts = [set_reading(p) for p in node[1]] if node[0] == "and" else [
        set_reading(node[1]), set_reading(node[2])]  # fmt: skip
    exact = [None if p is None else canonical(p) for p in parts]
    if any(e is None for e in exact):
        return None
    result = exact[0]
    for other in exact[1:]:  # merged after every step, so pieces never multiply
        result = merge(_intersect(result, other) if node[0] == "and" else _subtract(result, other))
    return _as_reading(result)


def _intersect(xs, ys) -> tuple:
    out = []
    for xlo, xlc, xhi, xhc in xs:
        for ylo, ylc, yhi, yhc in ys:
            lo, lc = max((xlo, not xlc), (ylo, not ylc))
            hi, hc = min((xhi, xhc), (yhi, yhc))
            out.append((lo, not lc, hi, hc))
    return tuple(out)


def _subtract(xs, ys) -> tuple:
    out = list(xs)
    for ylo, ylc, yhi, yhc in ys:
        cut = []
        for lo, lc, hi, hc in out:
            cut.append((lo, lc, min(hi, ylo), hc if hi < ylo else not ylc))
            cut.append((max(lo, yhi), lc if lo > yhi else not yhc, hi, hc))
        out = cut
    return tuple(out)


def _end(value):
    if value == _INF:
        return _OO
    return _MINUS_OO if value == -_INF else number_tree(value)


def _as_reading(pieces):
    """Canonical pieces back to `(intervals, points)` with exact trees."""
    intervals = [(lc, _end(lo), _end(hi), hc) for lo, lc, hi, hc in pieces if lo != hi]
    points = [number_tree(lo) for lo, _, hi, _ in pieces if lo == hi]
    return intervals, points


def _pieces_equal(xs, ys, same) -> bool:
    def match(a, b) -> bool:
        return a[0] == b[0] and a[3] == b[3] and same(a[1], b[1]) and same(a[2], b[2])

    return all(any(match(x, y) for y in ys) for x in xs) and all(
        any(match(x, y) for x in xs) for y in ys
    )


def sets_equal(gold, pred, same) -> bool:
    """Whether two sets of reals are equal (module docstring); False if either is not one."""
    rg, rp = set_reading(gold), set_reading(pred)
    if rg is None or rp is None:
        return False
    cg, cp = canonical(rg), canonical(rp)
    if cg is not None and cp is not None:
        return cg == cp
    points_equal = all(any(same(g, p) for p in rp[1]) for g in rg[1]) and all(
        any(same(g, p) for g in rg[1]) for p in rp[1]
    )
    return points_equal and _pieces_equal(rg[0], rp[0], same)
