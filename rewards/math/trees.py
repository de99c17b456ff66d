"""Small helpers on answer trees (the tuples built by `rewards.math.parse`): walking, symbols,
building trees from numbers, and the well-formedness check the parser runs on every answer.

`validate(tree)` raises `ParseError` where a structure sits where a scalar must be (`-[0,1)`,
`2(1,2)`, `\\frac{(1,2)}{3}`, a set inside a power) or a text label sits anywhere but in front
of `=`, so no back end is ever handed a node it cannot build (a negated interval used to raise
`KeyError` in the sympy back end). It does not evaluate or simplify anything.
"""

from __future__ import annotations

from fractions import Fraction

from rewards.math.tokens import ParseError

SCALAR_KINDS = frozenset(
    {
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
        "pct",
        "deg",
    }
)
_SCALAR_INSIDE = SCALAR_KINDS | {"pm", "ratio", "interval", "matrix"}
_UNION_PARTS = frozenset({"interval", "tuple", "set", "union", "minus"})


NODE_KINDS = SCALAR_KINDS | {
    "pm",
    "tuple",
    "set",
    "interval",
    "matrix",
    "union",
    "eq",
    "chain",
    "rel",
    "list",
    "ratio",
    "unit",
    "label",
    "builder",
    "and",
    "minus",
}


def _is_node(part) -> bool:
    return isinstance(part, tuple) and bool(part) and part[0] in NODE_KINDS


def children(node):
    """The sub-trees of a node (operands, items, matrix entries), in order; a relation's operator
    names are not sub-trees."""
    for part in node[1:]:
        if _is_node(part):
            yield part
        elif isinstance(part, tuple):
            for sub in part:
                if _is_node(sub):
                    yield sub
                elif isinstance(sub, tuple):  # matrix rows
                    yield from (c for c in sub if _is_node(c))


def symbols(node) -> set[str]:
    """Names of the free symbols in a tree."""
    if node[0] == "sym":
        return {node[1]}
    out: set[str] = set()
    for child in children(node):
        out |= symbols(child)
    return out


def has_kind(node, kinds) -> bool:
    """Whether any node of the tree has one of `kinds`."""
    return node[0] in kinds or any(has_kind(c, kinds) for c in children(node))


def number_tree(value: Fraction):
    """The tree of an exact rational (`("int", 3)`, `("neg", ("div", …))`)."""
    if value < 0:
        return ("neg", number_tree(-value))
    if value.denominator == 1:
        return ("int", value.numerator)
    return ("div", ("int", value.numerator), ("int", value.denominator))


def scale(node, factor: Fraction):
    """`node · factor` as a tree (the node itself when the factor is 1)."""
    return node if factor == 1 else ("mul", (node, number_tree(factor)))


def validate(node, scalar: bool = False) -> None:
    """ParseError if a structure sits where a scalar is required (module docstring)."""
    kind = node[0]
    if scalar and kind not in SCALAR_KINDS:
        raise ParseError(f"{kind} cannot be used as a number")
    if kind == "label":
        raise ParseError("a word label is only allowed in front of '='")
    parts = list(children(node))
    if (kind == "eq" and node[1][0] == "label") or (kind == "chain" and node[1][0][0] == "label"):
        parts = parts[1:]
    if kind in ("union", "minus") and any(p[0] not in _UNION_PARTS for p in parts):
        raise ParseError("only intervals and sets can be joined with \\cup")
    inner_scalar = kind in _SCALAR_INSIDE
    for child in parts:
        validate(child, inner_scalar)
