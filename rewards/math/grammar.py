"""The structural part of the answer grammar: brackets, sets, set-builder notation, matrices,
determinants and word labels, as a mixin of the parser in `rewards.math.parse`.

- `(a)`, `[a]` group; `(a, b)` and `(a, b, c)` are tuples; `[a, b]`, `(a, b]`, `[a, b)` are
  intervals; `{a}` is a group and `{a, b}` a set (as `\\{a, b\\}`);
- `\\{x \\mid x > 0\\}` / `\\{x : x > 0\\}` / `\\{x \\in \\reals \\mid …\\}` is a set-builder node
  whose condition is a relation, or several joined by `,` / `\\land` (all must hold);
- `pmatrix`, `bmatrix`, `Bmatrix`, `matrix`, `smallmatrix` and `array` (its column spec is
  skipped) are matrices, a trailing `\\\\` before `\\end` is ignored; `vmatrix` and `\\det` of a
  matrix are determinants, expanded along the first row (at most 4×4);
- a word label (`\\angle ABC`, `\\text{Area}`, `P(heads)`) is accepted only right in front of
  `=`; it keeps its text so two labels can be compared.
It does not evaluate anything; labels and sets are read by `rewards.math.labels` / `.sets`.
"""

from __future__ import annotations

from rewards.math.tokens import ParseError

MAX_DETERMINANT = 4
_MATRICES = ("pmatrix", "bmatrix", "Bmatrix", "matrix", "smallmatrix", "array")
_DETERMINANTS = ("vmatrix", "Vmatrix")
_REALS = ("interval", False, ("neg", ("const", "oo")), ("const", "oo"), False)


class Structures:
    """Mixin: needs the parser's token helpers (`peek`, `take`, `accept`, `expect`) and
    `annotated`/`expr`/`union`/`relation`."""

    def items(self) -> list:
        """`expr (, expr)*` inside brackets; each item may carry a unit."""
        items = [self.annotated()]
        while self.accept(","):
            items.append(self.annotated())
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

    def paren_or_group(self, value: str):
        if value != "{":
            return self.brackets(value)
        items = self.items()
        self.expect("}")
        return items[0] if len(items) == 1 else ("set", tuple(items))

    def set_(self, _):
        if self.accept("\\}"):
            return ("set", ())
        first = self.annotated()
        if self.accept("\\in") and self.union() != _REALS:
            raise ParseError("a set-builder domain other than the reals")
        if self.accept("|") or self.accept(":") or self.accept("\\mid"):
            conditions = [self.relation()]
            while self.accept(",") or self.accept("\\land"):  # in a set-builder `,` means and
                conditions.append(self.relation())
            self.expect("\\}")
            condition = conditions[0] if len(conditions) == 1 else ("and", tuple(conditions))
            return ("builder", first, condition)
        items = [first]
        while self.accept(","):
            items.append(self.annotated())
        self.expect("\\}")
        return ("set", tuple(items))

    def langle(self, _):
        items = self.items()
        self.expect("\\rangle")
        return ("tuple", tuple(items))

    def environment(self, env: str):
        if env not in _MATRICES + _DETERMINANTS:
            raise ParseError(f"unsupported environment {env!r}")
        if env == "array" and self.accept("{"):  # column spec such as {cc|c}
            while not self.accept("}"):
                if self.take()[0] == "end-of-input":
                    raise ParseError("unterminated array column spec")
        rows = self.matrix_rows(env)
        node = ("matrix", rows)
        return self.determinant(node) if env in _DETERMINANTS else node

    def matrix_rows(self, env: str) -> tuple:
        rows, row = [], [self.expr()]
        while True:
            if self.accept("&"):
                row.append(self.expr())
            elif self.accept("\\\\"):
                rows.append(tuple(row))
                if self.peek() == ("end", env):  # a trailing \\ before \end
                    self.take()
                    break
                row = [self.expr()]
            elif self.take() == ("end", env):
                rows.append(tuple(row))
                break
            else:
                raise ParseError(f"unterminated {env} at token {self.pos - 1}")
        if len({len(r) for r in rows}) != 1:
            raise ParseError("matrix rows have different lengths")
        return tuple(rows)

    def determinant(self, node):
        if node[0] != "matrix":
            raise ParseError("\\det of something that is not a matrix")
        rows = node[1]
        if len(rows) != len(rows[0]) or len(rows) > MAX_DETERMINANT:
            raise ParseError(f"determinant of a {len(rows)}×{len(rows[0])} matrix")
        return _expand(rows)

    def word_label(self) -> bool:
        """Whether the tokens from here to a top-level `=` / `\\approx` form a word label."""
        depth, i, seen_word = 0, self.pos, False
        while i < len(self.toks):
            kind, value = self.toks[i]
            if depth == 0 and kind in ("op", "cmd") and value in ("=", "\\approx"):
                return seen_word and i > self.pos
            if (depth == 0 and value == ",") or self.is_relop(self.toks[i]):
                return False
            if kind == "num" and (i == 0 or self.toks[i - 1][1] not in ("_", "{")):
                return False
            depth += value in ("(", "[", "{", "\\{") and kind in ("op", "cmd")
            depth -= value in (")", "]", "}", "\\}") and kind in ("op", "cmd")
            seen_word = seen_word or kind in ("text", "word", "cmd")
            i += 1
        return False

    def labelled(self):
        """`label = value` where the label is the word tokens before the `=`."""
        start = self.pos
        while not (self.peek()[0] in ("op", "cmd") and self.peek()[1] in ("=", "\\approx")):
            self.take()
        text = " ".join(value for _, value in self.toks[start : self.pos])
        return self.relation(first=("label", text))


def _expand(rows):
    """Determinant as a sum of products (Laplace expansion along the first row)."""
    n = len(rows)
    if n == 1:
        return rows[0][0]
    terms = []
    for j in range(n):
        minor = tuple(tuple(r[k] for k in range(n) if k != j) for r in rows[1:])
        term = ("mul", (rows[0][j], _expand(minor)))
        terms.append(term if j % 2 == 0 else ("neg", term))
    return ("add", tuple(terms))
