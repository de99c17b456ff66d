"""Exact, size-bounded evaluation of answer trees with `fractions.Fraction`, and the DoS guard.

`exact_value(node)` evaluates a scalar answer tree (see `rewards.math.parse`) to a `Fraction`, or to
`±math.inf` for infinities, without sympy. It is the checker's fast path: integers, fractions,
decimals, mixed numbers, percentages (`a\\%` inside arithmetic is a/100), degrees (the number
itself outside trigonometric functions), integer powers, perfect roots (`\\sqrt{16}`), factorials and
binomials are decided in-process in microseconds. Anything symbolic or irrational (`x`, `\\pi`,
`\\sqrt{2}`) raises `NotExact` and goes to sympy in a worker process.

`guard(node)` raises `TooBig` for inputs that could make sympy (or this module) run away, before
sympy ever sees them: integer exponents beyond `MAX_EXPONENT`, results beyond `MAX_BITS` bits,
symbolic bases raised beyond `MAX_SYMBOLIC_EXPONENT`, power towers deeper than two levels with a
non-constant exponent, factorials/binomials of arguments beyond `MAX_FACTORIAL`, and
factorials/binomials of anything containing a power (`((x+1)^{100})!` needs the gamma function
of a 100-digit rational at every spot point). Limits are estimated from operand bit lengths
before any big multiplication happens.
Source: limits are this project's choice; evaluation uses only the standard library.
It deliberately does not simplify or approximate: a value is exact or it is not.
"""

from __future__ import annotations

import math
from fractions import Fraction

from rewards.math.tokens import TooBig
from rewards.math.trees import children

__all__ = ["NeedsSymbolic", "NotExact", "children", "exact_value", "first_true", "guard"]

MAX_EXPONENT = 10_000
MAX_SYMBOLIC_EXPONENT = 100
MAX_BITS = 40_000
MAX_FACTORIAL = 1_000
MAX_ROOT_INDEX = 64


class NotExact(ValueError):
    """The tree has no exact rational value (symbols, irrationals, undefined or unsupported)."""


class NeedsSymbolic(Exception):
    """The exact back end cannot decide a pair; it has to go to sympy in a worker."""


def first_true(options) -> bool:
    """True if any of the zero-argument checks is True. A check that raises NeedsSymbolic does
    not stop the others; if none is True and one raised, NeedsSymbolic is raised at the end."""
    undecided = False
    for option in options:
        try:
            if option():
                return True
        except NeedsSymbolic:
            undecided = True
    if undecided:
        raise NeedsSymbolic
    return False


def _bits(v: Fraction) -> int:
    return max(v.numerator.bit_length(), v.denominator.bit_length(), 1)


def _finite(v) -> Fraction:
    if isinstance(v, float):
        raise NotExact("infinity inside arithmetic")
    return v


def _int_root(v: Fraction, n: int) -> Fraction:
    """Exact n-th root of a rational if it is a perfect power; NotExact otherwise."""
    if n < 1 or n > MAX_ROOT_INDEX:
        raise NotExact(f"root index {n}")
    sign = 1
    if v < 0:
        if n % 2 == 0:
            raise NotExact("even root of a negative number")
        sign, v = -1, -v
    parts = []
    for part in (v.numerator, v.denominator):
        guess = round(part ** (1.0 / n)) if part.bit_length() < 1000 else None
        root = next(
            (
                r
                for r in (guess, (guess or 0) - 1, (guess or 0) + 1)
                if r is not None and r >= 0 and r**n == part
            ),
            None,
        )
        if root is None:
            raise NotExact("root is irrational")
        parts.append(root)
    return sign * Fraction(parts[0], parts[1])


def _power(base, exponent):
    exponent = _finite(exponent)
    if isinstance(base, float):
        if exponent > 0:
            return base if exponent.denominator == 1 and exponent.numerator % 2 else abs(base)
        raise NotExact("infinity to a non-positive power")
    if abs(exponent) > MAX_EXPONENT:
        raise TooBig(f"exponent {exponent} beyond {MAX_EXPONENT}")
    if exponent.denominator != 1:
        base = _int_root(base, exponent.denominator)
        exponent = Fraction(exponent.numerator)
    if base == 0 and exponent < 0:
        raise NotExact("division by zero")
    if _bits(base) * abs(exponent) > MAX_BITS and abs(base) != 1:
        raise TooBig(f"power with about {int(_bits(base) * abs(exponent))} bits")
    return base ** int(exponent)


def _factorial(v) -> Fraction:
    v = _finite(v)
    if v.denominator != 1 or v < 0:
        raise NotExact("factorial of a non-natural number")
    if v > MAX_FACTORIAL:
        raise TooBig(f"factorial of {v} beyond {MAX_FACTORIAL}")
    return Fraction(math.factorial(int(v)))


def _add(values):
    infinities = {v for v in values if isinstance(v, float)}  # only ±inf are floats here
    if len(infinities) > 1:
        raise NotExact("inf - inf")
    return infinities.pop() if infinities else sum(values, Fraction(0))


def _mul(values):
    if any(isinstance(v, float) for v in values):
        if any(v == 0 for v in values):
            raise NotExact("0 * inf")
        return math.copysign(math.inf, math.prod(1 if v > 0 else -1 for v in values))
    out = Fraction(1)
    for v in values:
        out *= v
    return out


def _div(a, b):
    a, b = _finite(a), _finite(b)
    if b == 0:
        raise NotExact("division by zero")
    return a / b


def _root(x, n):
    n = _finite(n)
    if n.denominator != 1:
        raise NotExact("non-integer root index")
    return _int_root(_finite(x), int(n))


def _func(name: str, args):
    if name == "abs" and len(args) == 1:
        return abs(args[0])
    if name == "binom" and len(args) == 2:
        n, k = (_finite(a) for a in args)
        if n.denominator != 1 or k.denominator != 1 or n < 0:
            raise NotExact("binomial of non-naturals")
        if n > MAX_FACTORIAL:
            raise TooBig(f"binomial of {n} beyond {MAX_FACTORIAL}")
        return Fraction(math.comb(int(n), int(k)) if 0 <= k <= n else 0)
    raise NotExact(f"function {name}")


_LEAVES = {
    "int": lambda node: Fraction(node[1]),
    "dec": lambda node: Fraction(node[1]),
    "const": lambda node: math.inf if node[1] == "oo" else _raise(NotExact(node[1])),
}


def _raise(exc: Exception):
    raise exc


_INNER = {
    "add": lambda node: _add([exact_value(t) for t in node[1]]),
    "mul": lambda node: _mul([exact_value(t) for t in node[1]]),
    "neg": lambda node: -exact_value(node[1]),
    "div": lambda node: _div(exact_value(node[1]), exact_value(node[2])),
    "pow": lambda node: _power(exact_value(node[1]), exact_value(node[2])),
    "root": lambda node: _root(exact_value(node[1]), exact_value(node[2])),
    "fact": lambda node: _factorial(exact_value(node[1])),
    "pct": lambda node: _div(exact_value(node[1]), Fraction(100)),
    "deg": lambda node: exact_value(node[1]),
    "func": lambda node: _func(node[1], [exact_value(a) for a in node[2]]),
}


def exact_value(node):
    """Fraction (or ±inf) value of a scalar tree; NotExact if none, TooBig past the limits."""
    kind = node[0]
    if kind in _LEAVES:
        return _LEAVES[kind](node)
    if kind in _INNER:
        return _INNER[kind](node)
    raise NotExact(f"{kind} is not a scalar")


def _power_depth(node) -> int:
    """How many `pow` nodes are stacked in the deepest chain of `node`."""
    own = 1 if node[0] == "pow" else 0
    return own + max((_power_depth(c) for c in children(node)), default=0)


def _guard_value(node) -> None:
    """Evaluate exactly when possible, so size limits on powers/factorials apply."""
    try:
        exact_value(node)
    except NotExact:
        pass


def _guard_symbolic_power(node) -> None:
    """A power whose value is not exact: bound its exponent and forbid deep towers."""
    base, exponent = node[1], node[2]
    try:
        e = exact_value(exponent)
    except NotExact:
        if _power_depth(exponent) > 1:
            raise TooBig("power tower deeper than two levels") from None
        return
    if isinstance(e, float):
        return
    try:
        exact_value(base)
        return  # exact base with an exact exponent was already bounded by exact_value
    except NotExact:
        pass
    if abs(e) > MAX_SYMBOLIC_EXPONENT:
        raise TooBig(f"symbolic base raised to {e} (limit {MAX_SYMBOLIC_EXPONENT})")


def guard(node) -> None:
    """Raise TooBig if any part of the tree is too large to hand to sympy (module docstring)."""
    kind = node[0]
    if kind in ("pow", "fact", "func", "root"):
        _guard_value(node)
    if kind == "pow":
        _guard_symbolic_power(node)
    if (kind == "fact" or node[:2] == ("func", "binom")) and any(
        _power_depth(c) for c in children(node)
    ):
        raise TooBig("factorial or binomial of a power")  # e.g. ((x+1)^{100})!
    for child in children(node):
        guard(child)
