"""Answer extraction and string normalisation for the math checker (pure string work, no sympy),
and the list of equivalence policies the checker follows.

`extract_answer(text)` picks the text that is graded (reading tags with `envs.tags`);
`normalize(text)` rewrites it into a canonical LaTeX-ish string the parser (`rewards.math.parse`)
understands. Both are pure and cost a few microseconds per sample; their docstrings list the rules.

Policies of `is_equivalent(pred, gold)`, with their reasons (the modules named implement them):

- Unparsable or oversized input is simply not equivalent; no input raises (structures used as
  numbers, like `-[0,1)`, are rejected by the parser). Nothing is ever `eval`-ed or
  `sympify`-ed. Two identical strings are equal.
- Numbers (`numbers`): `1,000`, `1{,}000`, `1\\,000`, `1\\!000`, `1 000` group thousands only
  with exactly-3-digit groups; a plain comma inside brackets separates items, so
  `(2,12)\\cup(12,102)` stays two intervals. Decimal comma: `3{,}5` is 3.5, but a bare `3,5` is
  the list 3, 5 (a bare comma separates answers far more often than it marks decimals). A dot is
  always a decimal point. Decimals against exact values need 3 significant digits and must be
  the value rounded or truncated (`compare.decimal_matches`).
- Two numbers side by side are never a product (`2 3`, `\\frac{12}{2} 7` do not parse): that
  reading lets `1 000` equal 0 and `2 3` equal 6; a symbol, constant or bracket next to a
  number still multiplies (`2x`, `3\\pi`, `2(x+1)`, `2\\sqrt3`). `2\\frac13` is a mixed number.
- Collections (`compare`, `sets`): `\\{1,2\\}` and `{1,2}` are sets and `1, 2` a list, both
  compared as sets (order and duplicates ignored, nothing extra or missing). `(1,2)` is an
  ordered pair; against an interval, union, inequality or set-builder it reads as the open
  interval (1, 2), so `(1,2)` vs gold `(1,2)` is equal either way and never equals `[1,2]` or
  `\\{1,2\\}`: MATH writes pairs and open intervals alike, the other side disambiguates.
  Inequalities, intervals, unions and set-builders are one kind (sets of reals): `-1<x<1` =
  `|x|<1` = `(-1,1)`, `x>2` = `(2,\\infty)`, `\\mathbb{R}` = `(-\\infty,\\infty)`, touching pieces
  merge (`[0,1]\\cup[1,2]` = `[0,2]`); the variable's name does not matter.
- Hedges never match a single value: a value is not equal to a list, set, `\\pm`, interval or
  inequality that contains it (`6, 7`, `6 \\text{ or } 7`, `6 \\pm 1`, `[5,7]`, `6 \\lor 7`).
- Labels and chains (`labels`): `x = 5`, `AB = 4`, `f(x) = 1`, `(p,q) = (3,2)`,
  `\\text{Area} = 12` state their value; when both sides carry labels they must agree. A chain
  `x = 1+2 = 3` states its last value, because a worked answer ends in its result; so does
  `x \\approx 11`. Genuine equations (`x-3=0`, `2x=6`) equal only equations: proportional ones,
  or, in one variable, polynomials with the same roots over ℂ (`x-3=0` = `x=3`), never a value.
- Ratios: `a:b` is the fraction a/b (`3:2` = `3/2` = 1.5, `2:4` = `1:2`); longer ratios are
  equal when proportional. Ratios are not pairs.
- Percent (`units`): `28\\%` equals `28\\%`, 28 and 0.28 (the same quantity, and GSM-style golds
  drop the sign); `0.28` vs `28` stays unequal. `percent`, `pct` and `%` mean `\\%`.
- Degrees (`units`): `30^\\circ` equals 30 and π/6; inside `\\sin` etc. it is converted to
  radians (`\\sin 60^\\circ` = `\\frac{\\sqrt3}{2}`); a bare `\\sin 60` is in radians.
- Units (`units`, `words`): `\\text{…}`/`\\mathrm{…}` after a value, or known unit words after
  it, are its unit. Different units never match (`5 m` ≠ `5 cm`); known units of one
  dimension convert exactly (`500 cm` = `5 m`); a missing unit on either side is tolerated
  (`5\\text{ m}` vs `5`), because golds and answers routinely omit units. A whole answer that is
  one dollar amount (`\\$18.50`) is in dollars; other `$` signs are math delimiters.
- Word answers (`answers`, `words`): a `\\text{…}` word, anything that is not math, or
  yes/no/true/false/none compares case-insensitively (`\\text{North}` = `north`,
  `\\text{(B)}` = `B`); single bare letters are case-sensitive math symbols (`A` ≠ `a`).
- Prose around a number (`answers`, `words`): only against a plain-number gold, a short text
  with exactly one number and no hedging or negating word reads as that number (`18 clips`,
  `The answer is 18.`, `\\$18.00`), because GSM8K golds are plain numbers and models add nouns;
  never against any other gold, and never when another number appears.
- Characters: only ASCII digits (and their fullwidth forms) are digits; look-alike letters of
  other scripts are not mapped, so `х = 5` (Cyrillic) is not math.

Sources: the `<think>/<answer>` layout is the DeepSeek-R1-Zero template (DeepSeek-AI, 2025);
`\\boxed{}` answers follow the MATH dataset (Hendrycks et al., 2021); the rewrites are our own.
It deliberately does not: evaluate anything, convert units (it marks them: `\\unit{cm}`), or
guess at natural-language answers ("two"); word answers stay words and compare as words.
"""

from __future__ import annotations

import re
import unicodedata

from envs.tags import answer_span, last_boxed
from rewards.math.numbers import decimal_commas, group_digits, mixed_numbers, repeating_decimals
from rewards.math.words import STOP_WORDS

_UNICODE = {
    "√": "\\sqrt ",
    "∞": "\\infty ",
    "−": "-",
    "–": "-",
    "‒": "-",
    "﹣": "-",
    "×": "\\times ",
    "·": "\\cdot ",
    "⋅": "\\cdot ",
    "∗": "*",
    "÷": "\\div ",
    "π": "\\pi ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "≈": "\\approx ",
    "±": "\\pm ",
    "∓": "\\mp ",
    "∈": "\\in ",
    "ℝ": "\\reals ",
    "∅": "\\emptyset ",
    "∪": "\\cup ",
    "°": "\\degree ",
    "½": "\\frac{1}{2}",
    "⅓": "\\frac{1}{3}",
    "⅔": "\\frac{2}{3}",
    "¼": "\\frac{1}{4}",
    "¾": "\\frac{3}{4}",
    "⅕": "\\frac{1}{5}",
    "⅛": "\\frac{1}{8}",
    "α": "\\alpha ",
    "β": "\\beta ",
    "γ": "\\gamma ",
    "δ": "\\delta ",
    "θ": "\\theta ",
    "λ": "\\lambda ",
    "μ": "\\mu ",
    "σ": "\\sigma ",
    "φ": "\\phi ",
    "ω": "\\omega ",
    "\u00a0": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2009": "\\,",
    "\u202f": "\\,",
    "\u2006": "\\,",
    "\u2007": "\\,",
    "\u2008": "\\,",
    "\u200a": "\\,",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",
    "\ufeff": "",
}
_SUPERSCRIPT_MAP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUPERSCRIPTS = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+")
# Literal replacements applied in order (longest first where prefixes overlap).
_LITERAL = [
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\cfrac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\middle", ""),
    ("\\displaystyle", ""),
    ("\\textstyle", ""),
    ("\\hline", ""),
    ("\\!", " "),
    ("\\,", " "),
    ("\\;", " "),
    ("\\:", " "),
    ("\\qquad", " "),
    ("\\quad", " "),
    ("~", " "),
    ("\\$", ""),
    ("$", ""),
    ("\\(", ""),
    ("\\)", ""),
    ("\\[", ""),
    ("\\]", ""),
    ("{}^{\\circ}", "\\degree "),
    ("{}^\\circ", "\\degree "),
    ("^{\\circ}", "\\degree "),
    ("^\\circ", "\\degree "),
    ("\\circ", "\\degree "),
    ("^\\degree", "\\degree"),
    ("\\lbrace", "\\{"),
    ("\\rbrace", "\\}"),
    ("\\lvert", "|"),
    ("\\rvert", "|"),
    ("\\vert", "|"),
    ("\\mid", "|"),
    ("\\leqslant", "\\le"),
    ("\\geqslant", "\\ge"),
    ("\\leq", "\\le"),
    ("\\geq", "\\ge"),
    ("\\neq", "\\ne"),
    ("\\cdotp", "\\cdot"),
    ("\\lor", ","),
    ("\\vee", ","),
    ("\\wedge", "\\land "),
    ("\\mathbb{R}", "\\reals "),
    ("\\mathbb R", "\\reals "),
    ("\\bigl", ""),
    ("\\bigr", ""),
    ("\\big", ""),
    ("\\Bigl", ""),
    ("\\Bigr", ""),
    ("\\Big", ""),
    (";", ","),
]
_TEXT_MACRO = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|mathrm|mathbf|mathit|"
    r"mathsf|mathtt|mathup|mbox|hbox|operatorname|boldsymbol|bm)\s*\{([^{}]*)\}(\^\{?-?\d\}?)?"
)
_PERCENT_SIGN = re.compile(r"\\?%")
# a whole answer that is one dollar amount: `\$18.50`, `$18` (a single `$`, not a math pair)
_DOLLARS = re.compile(r"^\s*(?:\\\$|\$(?=[^$]*$))\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")
_PERCENT_WORDS = frozenset({"%", "\\%", "percent", "per cent", "pct", "percents"})
_DEGREE_WORDS = frozenset({"degrees", "degree", "deg", "°", "\\circ", "\\degree"})
_MARK_WORDS = re.compile(
    r"(?<=[0-9}])\s*\b(percent|per cent|pct|degrees|degree)\b(?!\s*(?:celsius|fahrenheit))",
    re.IGNORECASE,
)
_CELSIUS = re.compile(r"\\degree\s*(?:\\(?:text|mathrm)\{\s*([CF])\s*\}|([CF])(?![A-Za-z]))")
_WORDS = re.compile(r"[A-Za-z][A-Za-z' -]*[A-Za-z]")
_REALS_WORDS = frozenset(
    {"all real numbers", "all reals", "real numbers", "the set of all real numbers"}
)
_REALS_PHRASE = re.compile(r"(?:x\s*\\in\s*)?(?:all real numbers|all reals)", re.IGNORECASE)
_WORD_SEPARATORS = re.compile(r"\s+(and|or)\s+")
_CONTROL_SPACE = re.compile(r"(?<!\\)\\ ")  # `\ ` but not the row break `\\` before a space
_IN_PREFIX = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*\\in(?![a-z])\s*")
_OPERATOR_SPACE = re.compile(r"\s*([=,+\-*/^(){}\[\]])\s*")


def extract_answer(completion: str) -> str | None:
    """The graded answer text of a completion, or None.

    - Everything inside `<think>…</think>` is dropped first; an unclosed `<think>` swallows the
      rest, so reasoning never counts as an answer.
    - If an `<answer>` tag remains, the last `<answer>…</answer>` is used; an empty or
      unterminated last answer gives None.
    - Inside it (or in a text without answer tags) the last brace-matched `\\boxed{…}` (or
      `\\fbox{…}`, `\\boxed {…}`) wins; without one the whole stripped text is the answer.
    """
    if not isinstance(completion, str):
        return None
    text = answer_span(completion)
    if text is None:
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    text = text.strip()
    return text or None


def _text_macro(s: str, m: re.Match) -> str:
    """`\\text{…}` after a value is a unit (or `\\%`, `\\degree`); a lone one is a word answer
    when it is made of words, else it is unwrapped (`\\text{(B)}` → `(B)`, `\\mathbf{5}` → 5)."""
    content, power = m.group(1).strip(), m.group(2) or ""
    low = content.casefold()
    if low in ("or", ","):
        return ","
    if low == "and":
        return "\\land "
    if low in _PERCENT_WORDS:
        return "\\%"
    if low in _DEGREE_WORDS:
        return "\\degree "
    if not content:
        return " "
    before = s[: m.start()].rstrip()
    if before and re.search(r"[\w})]$", before):
        if re.fullmatch(r"[^\d{}\\]+", content) and not STOP_WORDS & set(low.split()):
            return f"\\unit{{{content}{power.replace('{', '').replace('}', '')}}}"
        return f"\\text{{{content}}}"
    if _WORDS.fullmatch(content):
        return "\\reals" if low in _REALS_WORDS else f"\\text{{{content}}}"
    return content + power


def _unicode(s: str) -> str:
    if s.isascii():
        return s
    s = _SUPERSCRIPTS.sub(lambda m: "^{" + m.group().translate(_SUPERSCRIPT_MAP) + "}", s)
    out = []
    for ch in s:
        if ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif "\uff01" <= ch <= "\uff5e":  # fullwidth ASCII forms
            out.append(unicodedata.normalize("NFKC", ch))
        else:
            out.append(ch)
    return "".join(out)


def _strip_in_prefix(item: str) -> str:
    """A leading `x \\in` in front of one item is dropped: `x \\in (1, 2)` is `(1, 2)`."""
    m = _IN_PREFIX.match(item)
    return item[m.end() :] if m and item[m.end() :].strip() else item


def normalize(text: str) -> str:
    """Canonical string form of an answer.

    Covers: a whole answer that is one dollar amount (`\\$18.50` → `18.50\\unit{dollar}`),
    other `$` and `\\$`, `\\(…\\)`, `\\left`/`\\right`, spacing macros, `\\dfrac`/`\\tfrac`/`\\cfrac`,
    degrees (`^\\circ`, `°`, `degrees` → `\\degree`), percent (`\\%`, `%`, `percent`, `pct` →
    `\\%`), `\\text{…}`/`\\mathrm{…}`/… after a value → `\\unit{…}`, a lone word `\\text{…}` kept
    as a word answer, `\\mathbb{R}` and "all real numbers" → `\\reals`, digit grouping and
    decimal commas (`rewards.math.numbers`), Unicode symbols (√ ½ ∞ − × · ÷ π ≤ ≥ ≠ ≈ ± ∈ ℝ ∪,
    Greek letters, superscript digits, fullwidth forms; zero-width characters dropped),
    repeating decimals, mixed numbers, trailing periods, `or`/`\\lor`/`;` between answers
    (→ `,`), `and`/`\\wedge` (→ `\\land`: a list of values, or the intersection of
    relations), and a leading `x \\in` in front of each comma-separated item. A leading
    `x =` is kept: `rewards.math.labels` reads labels, so `x = 3` can also be compared as an
    equation.
    """
    s = decimal_commas(group_digits(_unicode(text)))
    if "$" in s:
        s = _DOLLARS.sub(r"\1\\unit{dollar}", s)
    for old, new in _LITERAL:
        if old in s:
            s = s.replace(old, new)
    s = _PERCENT_SIGN.sub(r"\\%", s)
    if "\\" in s:
        s = _CELSIUS.sub(lambda m: f"\\unit{{°{m.group(1) or m.group(2)}}}", s)
        s = _TEXT_MACRO.sub(lambda m: _text_macro(s, m), s)
    s = _MARK_WORDS.sub(lambda m: "\\%" if m.group(1)[0] in "pP" else "\\degree ", s)
    s = _CONTROL_SPACE.sub(" ", repeating_decimals(s))
    s = _WORD_SEPARATORS.sub(lambda m: "\\land " if m.group(1) == "and" else ",", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").rstrip()
    if _REALS_PHRASE.fullmatch(s):
        s = "\\reals"
    if "\\in" in s:
        s = ",".join(_strip_in_prefix(p) for p in _split_top_level(s))
    s = _OPERATOR_SPACE.sub(r"\1", s)
    return mixed_numbers(s)


def _split_top_level(s: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside (), [], {} nesting; brackets are counted crudely (no validation)."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts
