"""Units, percentages and degrees: reading a unit text, and comparing marked answers.

`read_unit("cm^2")` gives a `Unit` with a canonical key and, for known units, an exact factor to
SI base units and a dimension: lengths (mm, cm, m, km, in, ft, yd, mi), masses (mg, g, kg, lb,
oz), times (s, min, h, day, week), volumes (mL, L), money (dollar, cent), with powers
(`cm^2`, `square feet`, `cubic m`) and quotients (`m/s`, `km per hour`, `mph`). Spelled-out and
plural names are aliases (`meters` = `m`). Unknown units (`apples`, `°C`) keep their text as the
key (case-folded, a plural `s` dropped) and have no factor.

`marked_equal(gold, pred, same)` compares two answer trees when one of them is a `unit`, `pct`
or `deg` node (`same(a, b)` compares the inner trees). The policies:

- units: equal keys → the values are compared; known units of the same dimension are converted
  (500 cm = 5 m; 1 ft = 12 in); different units never match (5 m ≠ 5 cm, 5 m² ≠ 5 m); a bare
  number on the other side matches the value, i.e. a missing unit is tolerated on either side
  (`5\\text{ m}` vs `5`), because graders routinely state answers without their units;
- percent: `p\\%` equals `p\\%`, the bare number p, and the fraction p/100 (28\\% = 28 = 0.28),
  because "28%" and "0.28" state the same quantity and GSM-style golds write the percent value
  without its sign; `0.28` vs `28` (no percent sign anywhere) stays unequal;
- degrees: `d°` equals `d°`, the bare number d, and its radian value d·π/180 when the other side
  involves π (30° = 30 = π/6); inside `\\sin`/`\\cos`/… the parser already converted to radians.
It does not know temperatures (no offsets), currencies other than dollars, or compound units
beyond one quotient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from rewards.math.exact import first_true
from rewards.math.trees import SCALAR_KINDS, has_kind, scale

_F = Fraction
_BASE = {  # canonical name: (factor to the base unit, base dimension, power of it)
    "mm": (_F(1, 1000), "length", 1),
    "cm": (_F(1, 100), "length", 1),
    "m": (_F(1), "length", 1),
    "km": (_F(1000), "length", 1),
    "in": (_F(254, 10000), "length", 1),
    "ft": (_F(3048, 10000), "length", 1),
    "yd": (_F(9144, 10000), "length", 1),
    "mi": (_F(1609344, 1000), "length", 1),
    "mg": (_F(1, 10**6), "mass", 1),
    "g": (_F(1, 1000), "mass", 1),
    "kg": (_F(1), "mass", 1),
    "lb": (_F(45359237, 10**8), "mass", 1),
    "oz": (_F(45359237, 16 * 10**8), "mass", 1),
    "s": (_F(1), "time", 1),
    "min": (_F(60), "time", 1),
    "h": (_F(3600), "time", 1),
    "day": (_F(86400), "time", 1),
    "week": (_F(604800), "time", 1),
    "mL": (_F(1, 10**6), "length", 3),
    "L": (_F(1, 1000), "length", 3),
    "dollar": (_F(1), "money", 1),
    "cent": (_F(1, 100), "money", 1),
}
_ALIASES = {
    "meter": "m",
    "metre": "m",
    "centimeter": "cm",
    "centimetre": "cm",
    "millimeter": "mm",
    "millimetre": "mm",
    "kilometer": "km",
    "kilometre": "km",
    "inch": "in",
    "inches": "in",
    "foot": "ft",
    "feet": "ft",
    "yard": "yd",
    "mile": "mi",
    "gram": "g",
    "kilogram": "kg",
    "milligram": "mg",
    "pound": "lb",
    "lbs": "lb",
    "ounce": "oz",
    "second": "s",
    "sec": "s",
    "minute": "min",
    "hour": "h",
    "hr": "h",
    "liter": "L",
    "litre": "L",
    "l": "L",
    "milliliter": "mL",
    "millilitre": "mL",
    "ml": "mL",
    "dollar": "dollar",
    "usd": "dollar",
    "cent": "cent",
}
_COMPOUND = {"mph": "mi/h", "kph": "km/h", "kmh": "km/h"}
_POWER_WORDS = {"square": 2, "sq": 2, "cubic": 3, "cu": 3}
_ATOM = re.compile(r"([A-Za-z]+)(?:\^(-?\d))?$")


@dataclass(frozen=True)
class Unit:
    key: str
    factor: Fraction | None = None  # to SI base units; None for unknown units
    dims: tuple = ()


def _canonical_name(word: str) -> str | None:
    if word in _BASE:
        return word
    low = word.casefold()
    for candidate in (low, low[:-1] if low.endswith("s") else low):
        if candidate in _ALIASES:
            return _ALIASES[candidate]
        if candidate in _BASE and len(candidate) > 1:
            return candidate
    return None


def _side(words: list[str], sign: int, dims: dict, parts: list) -> Fraction | None:
    factor, power = _F(1), 1
    for word in words:
        if word.casefold() in _POWER_WORDS:
            power = _POWER_WORDS[word.casefold()]
            continue
        m = _ATOM.match(word)
        name = _canonical_name(m.group(1)) if m else None
        if name is None:
            return None
        p = power * int(m.group(2) or 1) * sign
        base_factor, dim, dim_power = _BASE[name]
        factor *= base_factor**p
        dims[dim] = dims.get(dim, 0) + dim_power * p
        parts.append(f"{name}^{p}" if p != 1 else name)
        power = 1
    return factor


def read_unit(text: str) -> Unit:
    """The `Unit` of a unit text such as `cm^2`, `m/s`, `square feet` (module docstring)."""
    raw = re.sub(r"[{}]|\\[,;!]|\\cdot|\\(?:mathrm|text)", " ", text).replace("*", " ")
    raw = re.sub(r"\s*\^\s*", "^", raw).strip()
    raw = _COMPOUND.get(raw.casefold(), raw)
    raw = re.sub(r"\s+per\s+", "/", raw)
    sides = raw.split("/")
    if 1 <= len(sides) <= 2 and all(s.split() for s in sides):
        dims: dict = {}
        parts: list = []
        factors = [_side(s.split(), 1 if i == 0 else -1, dims, parts) for i, s in enumerate(sides)]
        if all(f is not None for f in factors):
            factor = factors[0] * (factors[1] if len(factors) == 2 else 1)
            key = " ".join(parts)
            return Unit(key, factor, tuple(sorted((d, p) for d, p in dims.items() if p)))
    words = [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in raw.casefold().split()]
    return Unit(" ".join(words))


def is_unit_text(text: str) -> bool:
    """Whether `text` is a known unit (for bare words after a number: `18 cm`, `3 feet`)."""
    return read_unit(text).factor is not None


def _units(gold, pred, same) -> bool:
    if gold[0] == "unit" and pred[0] == "unit":
        ug, up = read_unit(gold[2]), read_unit(pred[2])
        if ug.key == up.key:
            return same(gold[1], pred[1])
        if ug.factor is None or up.factor is None or ug.dims != up.dims:
            return False
        if gold[1][0] not in SCALAR_KINDS or pred[1][0] not in SCALAR_KINDS:
            return False
        return same(scale(gold[1], ug.factor), scale(pred[1], up.factor))
    if gold[0] == "unit":
        return same(gold[1], pred)
    return same(gold, pred[1])


def _percent(gold, pred, same) -> bool:
    if gold[0] == pred[0] == "pct":
        return same(gold[1], pred[1])
    marked, other = (gold, pred) if gold[0] == "pct" else (pred, gold)
    fraction = ("div", marked[1], ("int", 100))
    return first_true([lambda: same(marked[1], other), lambda: same(fraction, other)])


def _degrees(gold, pred, same) -> bool:
    if gold[0] == pred[0] == "deg":
        return same(gold[1], pred[1])
    marked, other = (gold, pred) if gold[0] == "deg" else (pred, gold)
    options = [lambda: same(marked[1], other)]
    if has_kind(other, ("const",)):
        radians = ("mul", (marked[1], ("div", ("const", "pi"), ("int", 180))))
        options.append(lambda: same(radians, other))
    return first_true(options)


MARKS = ("unit", "pct", "deg")


def marked_equal(gold, pred, same) -> bool:
    """Compare when `gold` or `pred` is a unit, percent or degree node (module docstring)."""
    if "unit" in (gold[0], pred[0]):
        return _units(gold, pred, same)
    if "pct" in (gold[0], pred[0]):
        return _percent(gold, pred, same)
    return _degrees(gold, pred, same)
