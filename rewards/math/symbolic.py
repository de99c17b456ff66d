"""The sympy back end: answer trees → sympy objects, and scalar/equation equivalence.

Runs inside the checker's worker processes (`rewards.math` sends it pairs the exact back end could
not decide). `to_sympy` builds expressions node by node from the parser's tree with sympy's
constructors (`Integer`, `Rational(p, q)`, `Symbol`, `Add`, `Mul`, `Pow`, functions from a fixed
registry); no string ever reaches `sympify`/`parse_expr`/`eval`.

Scalar equivalence and equations are decided as `_sympy_scalar` / `_sympy_equation` say:
equations are equal when proportional, or, as polynomials in one variable of degree at most
`MAX_ROOT_DEGREE`, when their square-free parts agree (same roots over ℂ: `x - 3 = 0` and
`2x = 6`; `(x-2)^2 = 0` and `x = 2`). The worker reads both texts with
`rewards.math.answers.read_pair`, exactly as the parent did. Percent and degree marks inside
arithmetic are a/100 and a.
Spot checks can in principle call two different functions equal; with 30-digit evaluation at
several generic points that needs a contrived input. Wall time is bounded by the caller.
Points take both signs, so identities that hold only for x > 0 (`\\sqrt{x^2} = x`,
`2\\ln x = \\ln x^2`) are rejected. Source: sympy's public constructors; spot checks as in
randomised identity testing (see `rewards.math.numeric`).
"""

from __future__ import annotations

from fractions import Fraction

import sympy

from rewards.math.answers import read_pair
from rewards.math.compare import (
    EXACT,
    NeedsSymbolic,
    ScalarBackend,
    decimal_matches,
    decimal_text,
    trees_equivalent,
)
from rewards.math.trees import SCALAR_KINDS

SPOT_POINTS = ((7, 10), (-13, 10), (21, 10), (-2, 5), (19, 13), (3, 7))  # (p, q) = p/q
TOLERANCE = 1e-12  # relative to max(1, |a|, |b|) at a point
MAX_ROOT_DEGREE = 12
_CONSTS = {"pi": sympy.pi, "E": sympy.E, "oo": sympy.oo, "I": sympy.I}


def _log(x, base=None):
    return sympy.log(x) if base is None else sympy.log(x, base)


_FUNCS = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "cot": sympy.cot,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "log": _log,
    "ln": sympy.log,
    "exp": sympy.exp,
    "abs": sympy.Abs,
    "binom": sympy.binomial,
}


def _rational(text: str) -> sympy.Rational:
    f = Fraction(text)
    return sympy.Rational(f.numerator, f.denominator)


def _root(x, n):
    if n.is_Integer and int(n) % 2 == 1 and x.is_number and x.is_negative:
        return -sympy.root(-x, n)  # real cube root of a negative number
    return sympy.root(x, n)


_BUILD = {
    "int": lambda n: sympy.Integer(n[1]),
    "dec": lambda n: _rational(n[1]),
    "sym": lambda n: sympy.Symbol(n[1]),
    "const": lambda n: _CONSTS[n[1]],
    "add": lambda n: sympy.Add(*[to_sympy(t) for t in n[1]]),
    "neg": lambda n: -to_sympy(n[1]),
    "mul": lambda n: sympy.Mul(*[to_sympy(t) for t in n[1]]),
    "div": lambda n: sympy.Mul(to_sympy(n[1]), sympy.Pow(to_sympy(n[2]), -1)),
    "pow": lambda n: sympy.Pow(to_sympy(n[1]), to_sympy(n[2])),
    "fact": lambda n: sympy.factorial(to_sympy(n[1])),
    "root": lambda n: _root(to_sympy(n[1]), to_sympy(n[2])),
    "func": lambda n: _FUNCS[n[1]](*[to_sympy(a) for a in n[2]]),
    "pct": lambda n: to_sympy(n[1]) / 100,
    "deg": lambda n: to_sympy(n[1]),
}


def to_sympy(node) -> sympy.Expr:
    """Sympy expression of a scalar answer tree (call `guard` on it first); ValueError (never
    KeyError) for a node that is not a scalar."""
    builder = _BUILD.get(node[0])
    if builder is None:
        raise ValueError(f"{node[0]} is not a scalar")
    return builder(node)


def _evaluate(expr, point: dict):
    """Value of `expr` at `point`: an exact sympy Rational when substitution gives one (cheap for
    polynomials), else a 30-digit complex; None where undefined."""
    try:
        value = expr.xreplace(point) if point else expr
        if value.is_Rational:
            return value
        value = complex(value.evalf(30))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError):
        return None
    if value != value or abs(value) == float("inf"):
        return None
    return value


def _close(va, vb) -> bool:
    """Equal values: exactly for two Rationals, else within TOLERANCE of the scale."""
    if isinstance(va, sympy.Rational) and isinstance(vb, sympy.Rational):
        return va == vb
    try:
        va, vb = complex(va), complex(vb)
    except OverflowError:
        return False
    return abs(va - vb) <= TOLERANCE * max(1.0, abs(va), abs(vb))


def _points(symbols) -> list[dict]:
    """Deterministic evaluation points; each symbol gets a different value at each point.
    Without free symbols there is one (empty) point."""
    if not symbols:
        return [{}]
    ordered = sorted(symbols, key=lambda s: s.name)
    n = len(SPOT_POINTS)
    return [
        {s: sympy.Rational(*SPOT_POINTS[(i + 2 * k) % n]) for k, s in enumerate(ordered)}
        for i in range(n)
    ]


def _spot_check_equal(a, b) -> bool | None:
    """True/False if the spot checks decide whether `a` equals `b`; None if undecided."""
    points = _points(a.free_symbols | b.free_symbols)
    valid = 0
    for point in points:
        va, vb = _evaluate(a, point), _evaluate(b, point)
        if va is None or vb is None:
            continue
        if not _close(va, vb):
            return False
        valid += 1
    return True if valid >= min(3, len(points)) else None


def sympy_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Steps 3–5 of the module docstring for two sympy expressions."""
    if a == b:
        return True
    if any(e.has(sympy.nan, sympy.zoo) for e in (a, b)):
        return False
    if any(e.has(sympy.oo, -sympy.oo) for e in (a, b)):
        return False  # equal infinities were caught by `a == b`
    verdict = _spot_check_equal(a, b)
    if verdict is not None:
        return verdict
    return sympy.simplify(a - b) == 0


def _sympy_scalar(a, b) -> bool:
    """Scalar equivalence (`SYMPY.scalar`).

    In order:
    1. both sides exact rationals → the exact back end's answer (with the rounding policy);
    2. a decimal literal against a constant (`1.4142` vs `\\sqrt2`) → the same rounding policy
       applied to the constant evaluated to 50 digits;
    3. `a - b` is structurally zero → equal;
    4. numeric spot checks: the difference is evaluated to 30 digits at `SPOT_POINTS`
       deterministic points (free symbols get distinct values of both signs); a point where it
       is finite and larger than 1e-12 relative to the operands → not equal; at least 3 valid
       points that all agree → equal (this decides sin²x+cos²x = 1 without simplify);
    5. otherwise (no valid point, e.g. everything undefined) `sympy.simplify(a - b) == 0`.
    """
    try:
        return EXACT.scalar(a, b)
    except NeedsSymbolic:
        pass
    ea, eb = to_sympy(a), to_sympy(b)
    for text, other in ((decimal_text(a), eb), (decimal_text(b), ea)):
        if text is not None and not other.free_symbols:
            if other.is_Rational:  # sympy evaluated it exactly (`\\cos 60^\\circ` = 1/2)
                return decimal_matches(text, Fraction(int(other.p), int(other.q)))
            value = sympy.N(other, 50)
            if not value.is_real or not value.is_finite:
                return False
            exact = sympy.Rational(value)
            return decimal_matches(text, Fraction(int(exact.p), int(exact.q)))
    return sympy_equal(ea, eb)


def _sympy_equation(a, b) -> bool:
    """Equations `l1 = r1`, `l2 = r2` are equal when `l1 - r1` is a nonzero constant multiple of
    `l2 - r2` on the spot points (so `y = 2x + 1` equals `2x - y + 1 = 0`), or, for polynomial
    equations in the same one variable, when they have the same solutions (`same_roots`)."""
    if any(side[0] not in SCALAR_KINDS for side in (a[1], a[2], b[1], b[2])):
        return False
    f = to_sympy(a[1]) - to_sympy(a[2])
    g = to_sympy(b[1]) - to_sympy(b[2])
    return _proportional(f, g) or same_roots(f, g)


def same_roots(f, g) -> bool:
    """`f = 0` and `g = 0` have the same solutions over the complex numbers: both are polynomials
    (after clearing constant denominators) in the same single variable, of degree at most
    `MAX_ROOT_DEGREE`, whose square-free parts are proportional (`(x-2)^2 = 0` ⇔ `x = 2`)."""
    symbols = f.free_symbols | g.free_symbols
    if len(symbols) != 1 or f.free_symbols != g.free_symbols:
        return False
    (x,) = symbols
    parts = []
    for expr in (f, g):
        num, den = sympy.fraction(sympy.together(expr))
        if den.has(x) or not num.is_polynomial(x):
            return False
        poly = sympy.Poly(num, x)
        if poly.degree() < 1 or poly.degree() > MAX_ROOT_DEGREE:
            return False
        parts.append(poly.sqf_part().monic())
    return parts[0] == parts[1]


def _proportional(f, g) -> bool:
    ratios = []
    for point in _points(f.free_symbols | g.free_symbols):
        vf, vg = _evaluate(f, point), _evaluate(g, point)
        if vf is None or vg is None:
            continue
        if abs(vg) < 1e-12:
            if abs(vf) > 1e-12:
                return False
            continue
        ratios.append(vf / vg)
    if len(ratios) < 3 or abs(ratios[0]) < 1e-12:
        return False
    return all(abs(r - ratios[0]) <= 1e-10 * abs(ratios[0]) for r in ratios)


SYMPY = ScalarBackend(scalar=_sympy_scalar, equation=_sympy_equation)


def check_symbolic(gold_text: str, pred_text: str) -> bool:
    """Worker entry: read two normalised answers as the parent does (`answers.read_pair`: parse,
    guard, gold-aware readings) and compare them with the sympy back end. Raises ValueError
    (ParseError) for an answer that is not math."""
    read = read_pair(gold_text, pred_text)
    if read.equal is not None:
        if read.method in ("parse", "guard"):
            raise ValueError(f"answer refused ({read.method})")
        return read.equal
    return trees_equivalent(read.gold, read.pred, SYMPY)
