"""The atoms of the answer grammar, as a mixin of the parser in `rewards.math.parse`: numbers,
names (with subscripts and primes), constants, functions (`\\sin`, `\\log_2`, powers such as
`\\sin^2 x`), `\\frac`, `\\binom`, `\\sqrt[n]{}`, `|x|` and named commands (Greek letters,
`\\emptyset`, `\\reals`, `\\det`).

Inside a trigonometric function a degree mark converts to radians (`\\sin 30^\\circ` is
`\\sin(30 · π/180)`); everywhere else `rewards.math.units` decides what a degree mark means.
It does not build precedence levels (`rewards.math.parse` does).
"""

from __future__ import annotations

from rewards.math.tokens import FUNCS, ParseError, TooBig

GREEK = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "theta",
    "lambda",
    "mu",
    "phi",
    "sigma",
    "omega",
    "tau",
    "rho",
    "epsilon",
    "varepsilon",
    "varphi",
    "psi",
    "eta",
    "xi",
    "zeta",
    "kappa",
    "nu",
    "chi",
)
_CONSTS = {"pi": "pi", "infty": "oo", "inf": "oo", "oo": "oo", "e": "E", "i": "I"}
_TRIG = ("sin", "cos", "tan", "sec", "csc", "cot")
_RADIAN = ("div", ("const", "pi"), ("int", 180))


class Atoms:
    """Mixin: needs the parser's token helpers and `expr`/`power`/`group`/`determinant`."""

    def arg(self):
        """A LaTeX argument: `{…}` or one token (`\\frac12`, `\\sqrt2`)."""
        if self.peek() == ("op", "{"):
            return self.group()
        kind, value = self.take()
        if kind == "num" and value.isdigit() and len(value) > 1:
            self.toks.insert(self.pos, ("num", value[1:]))  # `\\frac12` is 1/2
            return ("int", int(value[0]))
        if kind == "num":
            return self.number(value)
        if kind == "word":
            return self.name(value)
        raise ParseError(f"expected an argument at token {self.pos - 1}, got {value!r}")

    def number(self, text: str):
        digits = sum(ch.isdigit() for ch in text.split("e")[0].split("E")[0])
        if digits > self.limits.max_digits:
            raise TooBig(f"number with {digits} digits (limit {self.limits.max_digits})")
        if text.isdigit():
            return ("int", int(text))
        mantissa, _, exp = text.lower().partition("e")
        if exp and abs(int(exp)) > 400:
            raise TooBig(f"number exponent {exp} out of range")
        return ("dec", text)

    def name(self, letter: str):
        if self.accept("_"):
            sub = self.take()
            if sub == ("op", "{"):
                parts = []
                while self.peek()[1] != "}" and self.pos < len(self.toks):
                    parts.append(self.take()[1])
                self.expect("}")
                sub = ("op", "".join(parts))
            letter = f"{letter}_{sub[1]}"
        primes = ""
        while self.accept("'"):
            primes += "'"
        if letter in _CONSTS and not primes:
            return ("const", _CONSTS[letter])
        return ("sym", letter + primes)

    def function(self, name: str):
        base = None
        if name == "log" and self.accept("_"):
            base = self.arg()
        power = self.arg() if self.accept("^") else None
        if self.peek() == ("op", "("):
            self.take()
            arg = self.expr()
            self.expect(")")
        elif self.peek() == ("op", "{"):
            arg = self.group()
        else:
            arg = self.power()
        if name in _TRIG:
            arg = _radians(arg)
        node = ("func", name, (arg,) if base is None else (arg, base))
        if name == "sqrt":
            node = ("root", arg, ("int", 2))
        return node if power is None else ("pow", node, power)

    def frac(self, _):
        return ("div", self.arg(), self.arg())

    def binom(self, _):
        return ("func", "binom", (self.arg(), self.arg()))

    def sqrt(self, _):
        index = ("int", 2)
        if self.accept("["):
            index = self.expr()
            self.expect("]")
        return ("root", self.arg(), index)

    def abs_(self, closer: str):
        node = self.expr()
        self.expect(closer)
        return ("func", "abs", (node,))

    def command(self, value: str):
        name = value[1:]
        if name in FUNCS:
            return self.function(name)
        if name in _CONSTS:
            return ("const", _CONSTS[name])
        if name in GREEK:
            return ("sym", name)
        if name in ("emptyset", "varnothing"):
            return ("set", ())
        if name == "reals":
            return ("interval", False, ("neg", ("const", "oo")), ("const", "oo"), False)
        if name == "det":
            return self.determinant(self.power())
        raise ParseError(f"unsupported command {value!r} at token {self.pos - 1}")


def _radians(node):
    """Inside a trigonometric function a degree mark means `· π/180` (`\\sin 30^\\circ`)."""
    if node[0] == "deg":
        return ("mul", (_radians(node[1]), _RADIAN))
    if node[0] in ("add", "mul"):
        return (node[0], tuple(_radians(t) for t in node[1]))
    if node[0] == "neg":
        return ("neg", _radians(node[1]))
    if node[0] == "div":
        return ("div", _radians(node[1]), node[2])
    return node
