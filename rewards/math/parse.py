"""Recursive-descent parser for normalised answers (plain math and a LaTeX subset).

`parse_answer(text)` turns a string from `rewards.math.normalize.normalize` into a small tree of
tuples (the "answer tree"), never touching sympy, `eval` or `sympify`:

    ("int", 3)  ("dec", "0.25")  ("sym", "x_1")  ("const", "pi"|"E"|"oo"|"I")
    ("add", (a, b, …))  ("neg", a)  ("mul", (a, b, …))  ("div", a, b)  ("pow", a, b)
    ("fact", a)  ("root", a, n)  ("func", name, (args…))  ("pm", a, b)          scalars
    ("pct", a) `a\\%`   ("deg", a) `a°`                          marked scalars
    ("tuple", items)  ("set", items)  ("interval", lo_closed, a, b, hi_closed)
    ("matrix", rows)  ("union", parts)  ("builder", var, condition)  `\\{x \\mid x>0\\}`
    ("eq", lhs, rhs)  ("chain", operands) `a = b = c`  ("rel", ops, operands)
    ("ratio", items) `a:b`  ("unit", a, "cm^2")  ("label", "Area")  ("list", items)
    ("and", relations) `x > 1 \\land x < 5`  ("minus", a, b) `\\reals \\setminus \\{0\\}`

Size limits (`ParseLimits`, from `rewards.math.tokens`) are checked while tokenising and parsing:
characters, tokens, nesting depth and digits per literal. Numeric-size guards that need values
(huge powers, factorials) live in `rewards.math.exact.guard`. Any violation raises `TooBig`;
malformed input raises `ParseError` with the offending position; `rewards.math.trees.validate`
rejects structures used as numbers. The grammar is on `parse_answer`. It does not simplify or
evaluate anything.
Source: written here from scratch (plain recursive descent); it exists because sympy documents
that `parse_expr`/`sympify` on strings use `eval`, so they must never see model text.
"""

from __future__ import annotations

from rewards.math.atoms import Atoms
from rewards.math.grammar import Structures
from rewards.math.tokens import FUNCS, ParseError, ParseLimits, TooBig, tokenize
from rewards.math.trees import has_kind, validate

__all__ = ["FUNCS", "ParseError", "ParseLimits", "TooBig", "parse_answer", "tokenize"]

_RELOPS = {
    "=": "=",
    "\\approx": "=",
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
_MUL_OPS = frozenset({"*", "\\cdot", "\\times"})
_DIV_OPS = frozenset({"/", "\\div"})
_PLUS_MINUS = frozenset({"\\pm", "\\mp"})
_POSTFIX = {"!": "fact", "\\%": "pct", "\\degree": "deg"}
_LETTERS = ("sym", "const")  # a number after a factor without these is not a product


class _Parser(Atoms, Structures):
    def __init__(self, tokens: list[tuple[str, str]], limits: ParseLimits):
        self.toks, self.pos, self.depth, self.limits = tokens, 0, 0, limits

    # -- token helpers -------------------------------------------------------------------------
    def peek(self) -> tuple[str, str]:
        return self.toks[self.pos] if self.pos < len(self.toks) else ("end-of-input", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.pos += 1
        return tok

    def op(self) -> str:
        """The text of the next token when it is an operator or a command, else ""."""
        if self.pos < len(self.toks):
            kind, value = self.toks[self.pos]
            if kind == "op" or kind == "cmd":
                return value
        return ""

    def accept(self, value: str) -> bool:
        if self.op() == value:
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

    def at_relop(self) -> bool:
        return self.is_relop(self.peek())

    @staticmethod
    def is_relop(token: tuple[str, str]) -> bool:
        return token[1] in _RELOPS and token[0] in ("op", "cmd")

    # -- grammar -------------------------------------------------------------------------------
    def answer(self):
        items, joins = [self.item()], []
        while self.peek()[1] in (",", "\\land") and self.peek()[0] in ("op", "cmd"):
            joins.append(self.take()[1])
            items.append(self.item())
        if self.pos != len(self.toks):
            raise ParseError(f"unexpected {self.peek()[1]!r} at token {self.pos}")
        if len(items) == 1:
            return items[0]
        conjunction = set(joins) == {"\\land"} and all(i[0] == "rel" for i in items)
        return ("and" if conjunction else "list", tuple(items))

    def item(self):
        """A relation, or a word label in front of `=` (`\\angle ABC = 30`)."""
        start, depth = self.pos, self.depth
        try:
            return self.relation()
        except ParseError:
            self.pos, self.depth = start, depth
            if not self.word_label():
                raise
            return self.labelled()

    def relation(self, first=None):
        """`first`, when given, is an already parsed first operand (a word label)."""
        operands, ops = [self.ratio() if first is None else first], []
        while self.at_relop():
            ops.append(_RELOPS[self.take()[1]])
            operands.append(self.ratio())
        if not ops:
            return operands[0]
        if set(ops) == {"="}:
            return ("eq", *operands) if len(ops) == 1 else ("chain", tuple(operands))
        if all(op in (">", ">=") for op in ops):  # a > b ≡ b < a: one direction only
            ops = [{">": "<", ">=": "<="}[op] for op in reversed(ops)]
            operands.reverse()
        return ("rel", tuple(ops), tuple(operands))

    def ratio(self):
        parts = [self.union()]
        while self.accept(":"):
            parts.append(self.union())
        return parts[0] if len(parts) == 1 else ("ratio", tuple(parts))

    def union(self):
        parts = [self.annotated()]
        while True:
            op = self.op()
            if op == "\\cup":
                self.pos += 1
                parts.append(self.annotated())
            elif op in ("\\setminus", "\\backslash"):
                self.pos += 1
                left = parts[0] if len(parts) == 1 else ("union", tuple(parts))
                parts = [("minus", left, self.annotated())]
            else:
                return parts[0] if len(parts) == 1 else ("union", tuple(parts))

    def annotated(self):
        """An expression with an optional unit after it (`5\\unit{cm}`)."""
        node = self.expr()
        if self.peek()[0] == "unit":
            node = ("unit", node, self.take()[1])
        return node

    def expr(self):
        self.enter()
        if self.op() in _PLUS_MINUS:  # a leading ± is 0 ± term
            self.pos += 1
            terms = [("pm", ("int", 0), self.term())]
        else:
            terms = [self.term()]
        while True:
            op = self.op()
            if op == "+":
                self.pos += 1
                terms.append(self.term())
            elif op == "-":
                self.pos += 1
                terms.append(("neg", self.term()))
            elif op in _PLUS_MINUS:
                self.pos += 1
                left = terms[0] if len(terms) == 1 else ("add", tuple(terms))
                terms = [("pm", left, self.term())]
            else:
                break
        self.depth -= 1
        return terms[0] if len(terms) == 1 else ("add", tuple(terms))

    def term(self):
        factors, explicit = [self.unary()], False
        while True:
            op = self.op()
            if op in _MUL_OPS:
                self.pos += 1
                factors.append(self.unary())
                explicit = True
            elif op in _DIV_OPS:
                self.pos += 1
                left = factors[0] if len(factors) == 1 else ("mul", tuple(factors))
                factors, explicit = [("div", left, self.unary())], True
            elif self.starts_atom():
                if self.peek()[0] == "num" and not has_kind(factors[-1], _LETTERS):
                    raise ParseError(f"two numbers side by side at token {self.pos}")
                factors.append(self.power())
            else:
                mixed = None if explicit else _mixed_number(factors)
                return mixed or (factors[0] if len(factors) == 1 else ("mul", tuple(factors)))

    def starts_atom(self) -> bool:
        kind, value = self.peek()
        if kind in ("num", "word", "begin", "text"):
            return True
        return (kind == "op" and value in "({") or (kind == "cmd" and value not in _NOT_ATOM)

    def unary(self):
        if self.accept("-"):
            self.enter()
            node = self.unary()
            self.depth -= 1
            if node[0] in ("pct", "deg"):  # -5% is (-5)%, so the mark stays outermost
                return (node[0], ("neg", node[1]))
            return ("neg", node)
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
        while self.op() in _POSTFIX:
            node = (_POSTFIX[self.take()[1]], node)
        return node

    def group(self):
        """`{ expr }` (a LaTeX argument)."""
        self.expect("{")
        node = self.expr()
        self.expect("}")
        return node

    def atom(self):
        kind, value = self.take()
        self.enter()
        try:
            if kind == "num":
                return self.number(value)
            if kind == "word":
                return self.function(value) if value in FUNCS else self.name(value)
            if kind == "begin":
                return self.environment(value)
            if kind == "text":
                raise ParseError(f"word {value!r} is not math")
            handler = _ATOMS.get(value) if kind in ("op", "cmd") else None
            if handler is None and kind == "cmd" and value not in _NOT_ATOM:
                handler = Atoms.command
            if handler is None:
                raise ParseError(f"unexpected {value or kind!r} at token {self.pos - 1}")
            return handler(self, value)
        finally:
            self.depth -= 1


def _mixed_number(factors):
    """`2\\frac{1}{3}` (an integer, then a proper fraction of integers) is 7/3, not 2/3."""
    if len(factors) != 2:
        return None
    whole, frac = factors
    sign = 1
    if whole[0] == "neg":
        sign, whole = -1, whole[1]
    if whole[0] != "int" or frac[0] != "div" or frac[1][0] != "int" or frac[2][0] != "int":
        return None
    num, den = frac[1][1], frac[2][1]
    if not 0 < num < den:
        return None
    value = ("div", ("int", whole[1] * den + num), ("int", den))
    return value if sign > 0 else ("neg", value)


_NOT_ATOM = (
    set(_RELOPS)
    | set(_MUL_OPS)
    | set(_DIV_OPS)
    | {"\\pm", "\\mp", "\\cup", "\\}", "\\\\", "\\rangle", "\\|", "\\%", "\\degree", "\\in"}
    | {"\\mid", "\\land", "\\setminus", "\\backslash"}
)
_ATOMS = {
    "(": Structures.paren_or_group,
    "[": Structures.paren_or_group,
    "{": Structures.paren_or_group,
    "\\{": Structures.set_,
    "\\frac": Atoms.frac,
    "\\binom": Atoms.binom,
    "\\tbinom": Atoms.binom,
    "\\dbinom": Atoms.binom,
    "\\sqrt": Atoms.sqrt,
    "|": lambda p, v: p.abs_("|"),
    "\\langle": Structures.langle,
}


def parse_answer(text: str, limits: ParseLimits = ParseLimits()):
    """Answer tree of a normalised answer string; ParseError/TooBig if not.

    Grammar (precedence low → high): list `,` (`\\land` joining relations makes their
    intersection, `and`) > relation (`=`, `\\approx`, `<`, `\\le` …; one `=`
    makes `eq`, several make a `chain`) > ratio `:` > `\\cup`, `\\setminus` > unit > `+ - \\pm` >
    `* / \\cdot \\times \\div` and implicit products (`2x`, `2\\pi`, `3(x+1)`) > unary minus >
    `^` (right-associative) > postfix `!`, `\\%`, `\\degree` > atoms (`\\frac`, `\\sqrt[n]{}`,
    `\\binom`, functions, `|x|`, brackets, `\\{…\\}`, `{a, b}`, set-builder `\\{x \\mid …\\}`,
    matrices, `vmatrix`/`\\det` as determinants, `\\reals`). A number directly after a factor
    made of numbers only (`2 3`, `\\frac{12}{2} 7`, `\\sqrt2 3`) is an error, never a product
    (`x 2`, `\\pi 2` stay products); an integer followed
    by a proper fraction (`2\\frac{1}{3}`) is a mixed number. `(a, b)` is a tuple that compare
    treats as an open interval when the other side is a set of reals; `[a, b]`, `(a, b]`,
    `[a, b)` are intervals. Letters are one-letter symbols (`xy` = x·y; three or more in a row
    are a word, not math) except known function names; primes are part of a name (`y'`); `e` is Euler's number and `i` the
    imaginary unit. Subscripts are harmless name parts only (`x_1`, `\\log_2`). A word label
    is allowed only in front of `=` (`\\text{Area} = 5`, `\\angle ABC = 30`). A degree mark
    inside `\\sin`/`\\cos`/… converts to radians.
    """
    tokens = tokenize(text, limits)
    if not tokens:
        raise ParseError("empty answer")
    tree = _Parser(tokens, limits).answer()
    validate(tree)
    return tree
