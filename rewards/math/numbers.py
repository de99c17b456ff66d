"""String rewrites for how numbers are written: digit grouping, decimal commas, repeating
decimals and mixed numbers (part of `rewards.math.normalize`; pure string work).

Policies, with their reasons:

- digit groups: `1,000`, `1{,}000`, `1\\,000`, `1\\!000`, `1,\\!000`, `1~000`, `1 000` (and
  the Unicode thin spaces, mapped to `\\,` before) are one number when the first group has one to
  three digits and every further group exactly three, with the same separator throughout
  (`11,\\!111,\\!100` = 11111100). Writers group thousands this way; any other spacing
  (`2 3`, `1 00`) is left alone and the parser refuses two numbers side by side;
- a plain comma groups digits only outside brackets: inside `( )`, `[ ]`, `\\{ \\}`, `\\langle`
  it separates items, so `(2,12)\\cup(12,102)` keeps the interval (12, 102) and `(1,000)` is a
  pair; `{,}` (the LaTeX idiom for a comma inside a number) always belongs to the number;
- decimal comma: `3{,}5` is 3.5 (the `{,}` idiom followed by anything but a 3-digit group); a
  bare `3,5` is the list 3, 5, since a bare comma separates answers far more often than it
  marks decimals in this data; a dot is always a decimal point (`1.000` is 1);
- `0.1\\overline{6}` and `0.1(6)` repeat the barred or bracketed digits forever (= 1/6); a
  decimal followed directly by digits in parentheses is never a product;
- a mixed number is an integer then a proper fraction as one item (`2\\frac{1}{3}`, `2 1/3`,
  also after `=` or inside brackets) and means 7/3; an improper one (`2\\frac{5}{4}`) is left
  alone.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SEPARATOR = r"(?:\{,\}|,\\!|,|\\,|\\!|\\;|\\:|\\ |~| )"
_GROUPED = re.compile(
    rf"(?<![0-9.^_A-Za-z\\])([0-9]{{1,3}})({_SEPARATOR})([0-9]{{3}}(?:\2[0-9]{{3}})*)(?![0-9])(?!\2[0-9])"
)
_DECIMAL_COMMA = re.compile(r"(?<=[0-9])\{,\}(?=[0-9])")
_REPEATING = re.compile(
    r"([0-9]*)\.([0-9]{0,20})(?:\\overline\{([0-9]{1,20})\}|\(([0-9]{1,20})\))(?![0-9])"
)
_EDGE = r"(?:^|(?<=[=,(\[{]))"
_MIXED = re.compile(
    _EDGE
    + r"(-?)([0-9]{1,20})\s*\\frac(?:\{([0-9]{1,20})\}|([0-9]))(?:\{([0-9]{1,20})\}|([0-9]))"
    + r"(?=$|[,)\]}=<>\s])"
)
_MIXED_PLAIN = re.compile(
    _EDGE + r"(-?)([0-9]{1,20})\s+([0-9]{1,20})\s*/\s*([0-9]{1,20})(?=$|[,)\]=])"
)
_OPENERS = {"(": 1, "[": 1, ")": -1, "]": -1}


def _bracket_depths(s: str) -> list[int]:
    """Depth of `( [ \\{ \\langle` nesting before each position (plain `{` groups not counted)."""
    depths, depth, i = [], 0, 0
    while i < len(s):
        step = _OPENERS.get(s[i], 0)
        if s.startswith(("\\{", "\\langle"), i):
            step = 1
        elif s.startswith(("\\}", "\\rangle"), i):
            step = -1
        depths.append(depth)
        depth += step
        i += 1
    depths.append(depth)
    return depths


def group_digits(s: str) -> str:
    """Join digit groups into one number (module docstring); other text is left alone."""
    if not _GROUPED.search(s):
        return s
    depths = _bracket_depths(s) if any(c in s for c in "([\\") else None

    def join(m: re.Match) -> str:
        if m.group(2) == "," and depths is not None and depths[m.start()] > 0:
            return m.group(0)
        return m.group(1) + m.group(3).replace(m.group(2), "")

    return _GROUPED.sub(join, s)


def decimal_commas(s: str) -> str:
    """`3{,}5` → `3.5`; any other `{,}` is a plain comma."""
    return _DECIMAL_COMMA.sub(".", s).replace("{,}", ",")


def _repeating_decimal(m: re.Match) -> str:
    whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3) or m.group(4)
    value = Fraction(f"{whole}.{fixed}" if fixed else whole)
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def repeating_decimals(s: str) -> str:
    """`0.1\\overline{6}`, `0.1(6)` → `\\frac{1}{6}` (the barred or bracketed digits repeat)."""
    return _REPEATING.sub(_repeating_decimal, s) if "." in s else s


def _mixed(m: re.Match) -> str:
    groups = [g for g in m.groups()[1:] if g is not None]
    sign, (whole, num, den) = m.group(1), (int(g) for g in groups)
    if den == 0 or num >= den:
        return m.group(0)
    return f"{sign}\\frac{{{whole * den + num}}}{{{den}}}"


def mixed_numbers(s: str) -> str:
    """`2\\frac{1}{3}` / `2 1/3` as one item → `\\frac{7}{3}` (module docstring)."""
    if "\\frac" in s:
        s = _MIXED.sub(_mixed, s)
    return _MIXED_PLAIN.sub(_mixed, s) if "/" in s else s
