"""Labelled answers and chains: which part of `lhs = rhs` is the answer.

`reading(node)` takes an `eq` or `chain` node (see `rewards.math.parse`) and returns
`(label, value)` when the node states a value, or None when it is a genuine equation:

- a chain `a = b = c` (three or more sides) states its last side: `x = 1+2 = 3` is 3, because
  a worked answer ends in its result; its label is the first side when that is label-like;
- `label = value` where the label is a word label (`\\text{Area} = 5`, `\\angle ABC = 30`) or a
  label-like expression: a symbol (`x = 5`, `y' = 2x`), a product of symbols, possibly with
  numbers as arguments (`AB = 4`, `f(x) = 1`, `P(2) = …`, `f^{-1}(x) = …`), a quotient of such (`\\frac{NO}{BO} = …`), a
  function of them (`\\sin\\theta = …`), or a tuple/ratio of them (`(p, q) = (3, 2)`);
- `value = label` with a constant value (`3 = x`);
- `constant = constant` (`1 + 2 = 3`) states its right side, without a label.

Anything else (`x - 3 = 0`, `x^2 + y^2 = 1`, `2x = 6`) is an equation, compared as an equation.
It does not compare values itself (`rewards.math.compare` does, using these readings).
"""

from __future__ import annotations

from rewards.math.trees import symbols

_NUMBERS = ("int", "dec")


def label_like(node) -> bool:
    """Whether `node` reads as the name of a quantity rather than as arithmetic (docstring)."""
    kind = node[0]
    if kind in ("sym", "label"):
        return True
    if kind == "mul":
        first, rest = node[1][0], node[1][1:]
        return label_like(first) and all(label_like(f) or f[0] in _NUMBERS for f in rest)
    if kind == "div":
        return label_like(node[1]) and label_like(node[2])
    if kind == "pow":  # an inverse function's name: `f^{-1}(x)`
        return node[1][0] == "sym" and node[2] == ("neg", ("int", 1))
    if kind == "func":
        return all(label_like(a) or a[0] in _NUMBERS for a in node[2]) and label_like(node[2][0])
    if kind in ("tuple", "ratio"):
        return all(label_like(item) for item in node[1])
    return False


def _constant(node) -> bool:
    return node[0] != "label" and not symbols(node)


def reading(node):
    """`(label, value)` for a labelled value or a chain, None for a genuine equation; `label` is
    None when there is none (module docstring)."""
    if node[0] == "chain":
        first, last = node[1][0], node[1][-1]
        return (first if label_like(first) else None), last
    lhs, rhs = node[1], node[2]
    if label_like(lhs):
        return lhs, rhs
    if _constant(lhs) and label_like(rhs):
        return rhs, lhs
    if _constant(lhs) and _constant(rhs):
        return None, rhs
    return None


def equations_equal(gold, pred, same, equation) -> bool:
    """Compare when `gold` or `pred` is an `eq`/`chain` node.

    Two labelled values with the same label (or one without a label) compare their values;
    otherwise two `eq` nodes go to `equation(gold, pred)` (the back end's equation check) unless
    a side is a word label, which has no algebra. An `eq`/`chain` against a plain answer compares
    its value, when it states one; a genuine equation never equals a value."""
    g = reading(gold) if gold[0] in ("eq", "chain") else None
    p = reading(pred) if pred[0] in ("eq", "chain") else None
    if gold[0] in ("eq", "chain") and pred[0] in ("eq", "chain"):
        if g is not None and p is not None and (g[0] is None or p[0] is None or g[0] == p[0]):
            return same(g[1], p[1])
        if gold[0] == pred[0] == "eq" and "label" not in (gold[1][0], pred[1][0]):
            return equation(gold, pred)
        return False
    if gold[0] in ("eq", "chain"):
        return g is not None and same(g[1], pred)
    return p is not None and same(gold, p[1])
