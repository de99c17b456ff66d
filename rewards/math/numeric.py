"""Float/complex evaluation of answer trees at spot points: an in-process way to say "different".

`clearly_different(a, b)` evaluates two scalar trees with Python `cmath` at up to
`POINTS_TRIED` deterministic points (free symbols get the same values `rewards.math.symbolic`
uses) and returns True only when, at some point where both are defined, the values differ by more
than `TOLERANCE` times the largest magnitude met during either evaluation. Scaling by the largest
intermediate magnitude keeps float round-off (cancellation in `(10^{20}+x)-10^{20}`) from ever
looking like a difference. It never says "equal": equality is left to sympy in the worker, so
this only saves the worker round trip for wrong symbolic answers (about half of them in RL).
Branch conventions follow the sympy back end: principal values, except a real odd root of a
negative constant. Infinity, factorials of non-integers and unknown nodes make it undecided.
Source: randomised identity testing (evaluate at points instead of simplifying; the
Schwartz–Zippel lemma is its justification for polynomials); the condition-aware tolerance is
this project's.
"""

from __future__ import annotations

import cmath
import math

from rewards.math.trees import symbols

TOLERANCE = 1e-6
POINTS_TRIED = 3
_SPOTS = ((7, 10), (-13, 10), (21, 10), (-2, 5), (19, 13), (3, 7))  # as in math_symbolic
_CONSTS = {"pi": math.pi, "E": math.e, "I": 1j}
_FUNCS = {
    "sin": cmath.sin,
    "cos": cmath.cos,
    "tan": cmath.tan,
    "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z),
    "cot": lambda z: 1 / cmath.tan(z),
    "arcsin": cmath.asin,
    "arccos": cmath.acos,
    "arctan": cmath.atan,
    "sinh": cmath.sinh,
    "cosh": cmath.cosh,
    "tanh": cmath.tanh,
    "ln": cmath.log,
    "exp": cmath.exp,
    "abs": abs,
    "log": lambda z, base=None: cmath.log(z) if base is None else cmath.log(z) / cmath.log(base),
}


class _Undefined(Exception):
    pass


class _Evaluator:
    """Evaluates one tree at one point, remembering the largest magnitude it met."""

    def __init__(self, point: dict[str, float]):
        self.point, self.largest = point, 1.0

    def __call__(self, node) -> complex:
        value = complex(_RULES[node[0]](self, node)) if node[0] in _RULES else self.fail()
        if value != value or abs(value) == math.inf:
            raise _Undefined
        self.largest = max(self.largest, abs(value))
        return complex(value.real + 0.0, value.imag + 0.0)  # -0.0 → 0.0: principal branches

    def fail(self):
        raise _Undefined

    def power(self, node) -> complex:
        base, exponent = self(node[1]), self(node[2])
        if base == 0 and exponent.real <= 0:
            raise _Undefined
        if exponent.imag == 0 and exponent.real.is_integer() and abs(exponent.real) <= 1000:
            return base ** int(exponent.real)
        return cmath.exp(exponent * cmath.log(base))

    def root(self, node) -> complex:
        x, n = self(node[1]), self(node[2])
        if n == 0:
            raise _Undefined
        odd = n.imag == 0 and n.real.is_integer() and int(n.real) % 2 == 1
        if odd and x.imag == 0 and x.real < 0 and _is_constant(node[1]):
            return -((-x.real) ** (1 / n.real))  # the real root, as the sympy back end builds it
        return cmath.exp(cmath.log(x) / n) if x != 0 else 0

    def function(self, node) -> complex:
        if node[1] not in _FUNCS:
            raise _Undefined
        return _FUNCS[node[1]](*[self(a) for a in node[2]])

    def factorial(self, node) -> complex:
        v = self(node[1])
        if v.imag != 0 or not v.real.is_integer() or not 0 <= v.real <= 170:
            raise _Undefined
        return math.factorial(int(v.real))


def _product(ev: _Evaluator, node) -> complex:
    out = 1 + 0j
    for factor in node[1]:
        out *= ev(factor)
    return out


def _quotient(ev: _Evaluator, node) -> complex:
    num, den = ev(node[1]), ev(node[2])
    if den == 0:
        raise _Undefined
    return num / den


_RULES = {
    "int": lambda ev, n: float(n[1]) if abs(n[1]) < 1e300 else ev.fail(),
    "dec": lambda ev, n: float(n[1]),
    "sym": lambda ev, n: ev.point[n[1]],
    "const": lambda ev, n: _CONSTS[n[1]] if n[1] in _CONSTS else ev.fail(),
    "add": lambda ev, n: sum((ev(t) for t in n[1]), 0j),
    "neg": lambda ev, n: -ev(n[1]),
    "mul": _product,
    "div": _quotient,
    "pow": _Evaluator.power,
    "root": _Evaluator.root,
    "func": _Evaluator.function,
    "fact": _Evaluator.factorial,
    "pct": lambda ev, n: ev(n[1]) / 100,
    "deg": lambda ev, n: ev(n[1]),
}


def _is_constant(node) -> bool:
    return not symbols(node)


def _points(names: set[str]) -> list[dict[str, float]]:
    ordered, n = sorted(names), len(_SPOTS)
    return [
        {s: _SPOTS[(i + 2 * k) % n][0] / _SPOTS[(i + 2 * k) % n][1] for k, s in enumerate(ordered)}
        for i in range(n)
    ]


def clearly_different(a, b) -> bool:
    """True only if the two scalar trees certainly differ numerically (module docstring)."""
    names = symbols(a) | symbols(b)
    for point in _points(names)[: POINTS_TRIED if names else 1]:
        ea, eb = _Evaluator(point), _Evaluator(point)
        try:
            va, vb = ea(a), eb(b)
        except (_Undefined, ArithmeticError, ValueError, TypeError, KeyError):
            continue
        if abs(va - vb) > TOLERANCE * max(ea.largest, eb.largest):
            return True
    return False
