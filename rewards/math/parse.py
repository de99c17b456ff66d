"""Recursive-descent parser for normalised answers (plain math and a LaTeX subset).

`parse_answer(text)` turns a string from `rewards.math.normalize.normalize` into a small tree of
tuples (the "answer tree"), never touching sympy, `eval` or `sympify`:

    ("int", 3)  ("dec", "0.25")  ("sym", "x_1")  ("const", "pi"|"E"|"oo"|"I")
    ("add", (a, b, …))  ("neg", a)  ("mul", (a, b, …))  ("div", a, b)  ("pow", a, b)
    ("fact", a)  ("root", a, n)  ("func", name, (args…))  ("pm", a, b)          scalars
    ("tuple", items)  ("set", items)  ("interval", lo_closed, a, b, hi_closed)
    ("matrix", rows)  ("union", parts)  ("eq", lhs, rhs)  ("rel", ops, operands)  ("list", items)

Size limits (`ParseLimits`, from `rewards.math.tokens`) are checked while tokenising and parsing:
characters, tokens, nesting depth and digits per literal. Numeric-size guards that need values
(huge powers, factorials) live in `rewards.math.exact.guard`. Any violation raises `TooBig`;
malformed input raises `ParseError` with the offending position. The grammar is on
`parse_answer`. It does not simplify or evaluate anything.
Source: written here from scratch (plain recursive descent); it exists because sympy documents
that `parse_expr`/`sympify` on strings use `eval`, so they must never see model text.
"""

from __future__ import annotations

from rewards.math.tokens import FUNCS, ParseError, ParseLimits, TooBig, tokenize

__all__ = ["FUNCS", "ParseError", "ParseLimits", "TooBig", "parse_answer", "tokenize"]

_GREEK = (
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
)
_CONSTS = {"pi": "pi", "infty": "oo", "inf": "oo", "oo": "oo", "e": "E", "i": "I"}
_RELOPS = {
    "=": "=",
    "<": "<",
    ">": ">",
    "\\le": "<=",
    "\\ge": ">=",
    "\\lt": "<",
    "\\gt": ">",
    "<=": "<=",
    ">=": ">=",
    "\\ne": "!=",
    "!=": "!=",
}
_MUL_OPS = ("*", "\\cdot", "\\times")
_DIV_OPS = ("/", "\\div")


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], limits: ParseLimits):
        self.toks, self.pos, self.depth, self.limits = tokens, 0, 0, limits

    # -- token helpers -------------------------------------------------------------------------
    def peek(self) -> tuple[str, str]:
        return self.toks[self.pos] if self.pos < len(self.toks) else ("end-of-input", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.pos += 1
        return tok

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("op", "cmd"):
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            kind, got = self.peek()
            raise ParseError(f"expected {value!r} at token {self.pos}, got {got or kind!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise TooBig(f"nesting deeper than {self.limits.max_depth}")

    # -- grammar -------------------------------------------------------------------------------
    def answer(self):
        items = [self.relation()]
        while self.accept(","):
            items.append(self.relation())
        if self.pos != len(self.toks):
            raise ParseError(f"unexpected {self.peek()[1]!r} at token {self.pos}")
        return items[0] if len(items) == 1 else ("list", tuple(items))

    def relation(self):
        operands, ops = [self.union()], []
        while self.peek()[1] in _RELOPS and self.peek()[0] in ("op", "cmd"):
            ops.append(_RELOPS[self.take()[1]])
            operands.append(self.union())
        if not ops:
            return operands[0]
        if ops == ["="]:
            return ("eq", operands[0], operands[1])
        if all(op in (">", ">=") for op in ops):  # a > b ≡ b < a: one direction only
            ops = [{">": "<", ">=": "<="}[op] for op in reversed(ops)]
            operands.reverse()
        return ("rel", tuple(ops), tuple(operands))

    def union(self):
        parts = [self.expr()]
        while self.accept("\\cup"):
            parts.append(self.expr())
        return parts[0] if len(parts) == 1 else ("union", tuple(parts))

    def expr(self):
        self.enter()
        if self.accept("\\pm"):  # a leading ± is 0 ± term
            terms = [("pm", ("int", 0), self.term())]
        else:
            terms = [self.term()]
        while True:
            if self.accept("+"):
                terms.append(self.term())
            elif self.accept("-"):
                terms.append(("neg", self.term()))
            elif self.accept("\\pm"):
                left = terms[0] if len(terms) == 1 else ("add", tuple(terms))
                terms = [("pm", left, self.term())]
            else:
                break
        self.depth -= 1
        return terms[0] if len(terms) == 1 else ("add", tuple(terms))

    def term(self):
        factors = [self.unary()]
        while True:
            if any(self.accept(op) for op in _MUL_OPS):
                factors.append(self.unary())
            elif any(self.accept(op) for op in _DIV_OPS):
                left = factors[0] if len(factors) == 1 else ("mul", tuple(factors))
                factors = [("div", left, self.unary())]
            elif self.starts_atom():
                factors.append(self.power())
            else:
                return factors[0] if len(factors) == 1 else ("mul", tuple(factors))

    def starts_atom(self) -> bool:
        kind, value = self.peek()
        if kind in ("num", "word", "begin"):
            return True
        return (kind == "op" and value in "({") or (kind == "cmd" and value not in _NOT_ATOM)

    def unary(self):
        if self.accept("-"):
            self.enter()
            node = ("neg", self.unary())
            self.depth -= 1
            return node
        if self.accept("+"):
            return self.unary()
        return self.power()

    def power(self):
        base = self.postfix(self.atom())
        if self.accept("^"):
            self.enter()
            exponent = self.group() if self.peek() == ("op", "{") else self.unary()
            self.depth -= 1
            return ("pow", base, exponent)
        return base

    def postfix(self, node):
        while self.accept("!"):
            node = ("fact", node)
        return node

    def group(self):
        """`{ expr }` (a LaTeX argument)."""
        self.expect("{")
        node = self.expr()
        self.expect("}")
        return node

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

    def atom(self):
        kind, value = self.take()
        self.enter()
        try:
            if kind == "num":
                return self.number(value)
            if kind == "word":
                return self.function(value) if value in FUNCS else self.name(value)
            if kind == "begin":
                return self.matrix(value)
            handler = _ATOMS.get(value) if kind in ("op", "cmd") else None
            if handler is None and kind == "cmd" and value not in _NOT_ATOM:
                handler = _Parser.command
            if handler is None:
                raise ParseError(f"unexpected {value or kind!r} at token {self.pos - 1}")
            return handler(self, value)
        finally:
            self.depth -= 1

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
            return ("sym", f"{letter}_{sub[1]}")
        if letter in _CONSTS:
            return ("const", _CONSTS[letter])
        return ("sym", letter)

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
        node = ("func", name, (arg,) if base is None else (arg, base))
        if name == "sqrt":
            node = ("root", arg, ("int", 2))
        return node if power is None else ("pow", node, power)

    def items(self) -> list:
        """`expr (, expr)*` inside brackets."""
        items = [self.expr()]
        while self.accept(","):
            items.append(self.expr())
        return items

    def brackets(self, opener: str):
        items = self.items()
        closer = self.take()[1]
        if closer not in (")", "]"):
            raise ParseError(f"unclosed {opener!r} before token {self.pos - 1}")
        if len(items) == 1 and opener + closer in ("()", "[]"):
            return items[0]
        if len(items) == 2 and opener + closer != "()":
            return ("interval", opener == "[", items[0], items[1], closer == "]")
        if opener + closer in ("()", "[]"):
            return ("tuple", tuple(items))
        raise ParseError(f"bracket {opener}…{closer} with {len(items)} items is not an interval")

    def set_(self, _):
        if self.accept("\\}"):
            return ("set", ())
        items = self.items()
        self.expect("\\}")
        return ("set", tuple(items))

    def matrix(self, env: str):
        if env not in ("pmatrix", "bmatrix", "matrix"):
            raise ParseError(f"unsupported environment {env!r}")
        rows, row = [], [self.expr()]
        while True:
            if self.accept("&"):
                row.append(self.expr())
            elif self.accept("\\\\"):
                rows.append(tuple(row))
                row = [self.expr()]
            elif self.take() == ("end", env):
                rows.append(tuple(row))
                break
            else:
                raise ParseError(f"unterminated {env} at token {self.pos - 1}")
        if len({len(r) for r in rows}) != 1:
            raise ParseError("matrix rows have different lengths")
        return ("matrix", tuple(rows))

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

    def paren_or_group(self, value: str):
        if value != "{":
            return self.brackets(value)
        node = self.expr()
        self.expect("}")
        return node

    def langle(self, _):
        items = self.items()
        self.expect("\\rangle")
        return ("tuple", tuple(items))

    def command(self, value: str):
        name = value[1:]
        if name in FUNCS:
            return self.function(name)
        if name in _CONSTS:
            return ("const", _CONSTS[name])
        if name in _GREEK:
            return ("sym", name)
        if name in ("emptyset", "varnothing"):
            return ("set", ())
        raise ParseError(f"unsupported command {value!r} at token {self.pos - 1}")


_NOT_ATOM = (
    set(_RELOPS)
    | set(_MUL_OPS)
    | set(_DIV_OPS)
    | {"\\pm", "\\cup", "\\}", "\\\\", "\\rangle", "\\|", "\\mp"}
)
_ATOMS = {
    "(": _Parser.paren_or_group,
    "[": _Parser.paren_or_group,
    "{": _Parser.paren_or_group,
    "\\{": _Parser.set_,
    "\\frac": _Parser.frac,
    "\\binom": _Parser.binom,
    "\\tbinom": _Parser.binom,
    "\\dbinom": _Parser.binom,
    "\\sqrt": _Parser.sqrt,
    "|": lambda p, v: p.abs_("|"),
    "\\langle": _Parser.langle,
}


def parse_answer(text: str, limits: ParseLimits = ParseLimits()):
    """Answer tree of a normalised answer string; ParseError/TooBig if not.

    Grammar (precedence low → high): list `,` > relation (`=`, `<`, `\\le` …) > `\\cup` >
    `+ - \\pm` > `* / \\cdot \\times \\div` and implicit products (`2x`, `2\\pi`, `3(x+1)`) > unary
    minus > `^` (right-associative) > postfix `!` > atoms (`\\frac`, `\\sqrt[n]{}`, `\\binom`,
    functions, `|x|`, brackets, `\\{…\\}`, `\\begin{pmatrix}…\\end{pmatrix}`). `(a, b)` is a tuple
    that compare treats as an open interval when the other side is an interval; `[a, b]`, `(a, b]`,
    `[a, b)` are intervals. Letters are one-letter symbols (`xy` = x·y; three or more in a row
    are a word, not math) except known function names; `e` is Euler's number and `i` the imaginary
    unit. Subscripts are harmless name parts only (`x_1`, `\\log_2`).
    """
    tokens = tokenize(text, limits)
    if not tokens:
        raise ParseError("empty answer")
    return _Parser(tokens, limits).answer()
