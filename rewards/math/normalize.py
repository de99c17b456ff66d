"""Answer extraction and string normalisation for the math checker (pure string work, no sympy).

`extract_answer(text)` picks the text that is graded (reading tags with `envs.tags`);
`normalize(text)` rewrites it into a canonical LaTeX-ish string the parser (`rewards.math.parse`)
understands. Both are pure and cost a few microseconds per sample; their docstrings list the rules.

Sources: the `<think>/<answer>` layout is the DeepSeek-R1-Zero template (DeepSeek-AI, 2025);
`\\boxed{}` answers follow the MATH dataset (Hendrycks et al., 2021); the rewrites are our own.
It deliberately does not: evaluate anything, know about units beyond dropping `\\text{}` words, or
guess at natural-language answers ("two"); those stay strings and compare as strings.
"""

from __future__ import annotations

import re
from fractions import Fraction

from envs.tags import answer_span, last_boxed

_UNICODE = {
    "√": "\\sqrt",
    "∞": "\\infty",
    "−": "-",
    "–": "-",
    "×": "\\times",
    "·": "\\cdot",
    "÷": "\\div",
    "π": "\\pi",
    "≤": "\\le",
    "≥": "\\ge",
    "∪": "\\cup",
    "°": "",
    "½": "\\frac{1}{2}",
    "⅓": "\\frac{1}{3}",
    "⅔": "\\frac{2}{3}",
    "¼": "\\frac{1}{4}",
    "¾": "\\frac{3}{4}",
    "⅕": "\\frac{1}{5}",
    "⅛": "\\frac{1}{8}",
    "\u00a0": " ",
}
# Literal replacements applied in order (longest first where prefixes overlap).
_LITERAL = [
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\displaystyle", ""),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", " "),
    ("\\:", " "),
    ("\\qquad", " "),
    ("\\quad", " "),
    ("\\ ", " "),
    ("~", " "),
    ("\\$", ""),
    ("$", ""),
    ("\\(", ""),
    ("\\)", ""),
    ("\\[", ""),
    ("\\]", ""),
    ("^{\\circ}", ""),
    ("^\\circ", ""),
    ("\\circ", ""),
    ("\\%", ""),
    ("%", ""),
    ("\\lbrace", "\\{"),
    ("\\rbrace", "\\}"),
    ("\\lvert", "|"),
    ("\\rvert", "|"),
    ("\\vert", "|"),
    ("\\mid", "|"),
    ("\\leq", "\\le"),
    ("\\geq", "\\ge"),
    ("\\neq", "\\ne"),
    ("\\cdotp", "\\cdot"),
    ("\\bigl", ""),
    ("\\bigr", ""),
    ("\\big", ""),
    ("\\Bigl", ""),
    ("\\Bigr", ""),
    ("\\Big", ""),
]
_TEXT_MACRO = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}(\^\{?\d\}?)?"
)
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+)(?![\d]|,\d)")
_WORD_SEPARATORS = re.compile(r"\s+(?:and|or)\s+")
_LHS_VARIABLE = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*(?:=|\\in(?![a-z]))\s*(?!=)")
_REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{(\d{1,20})\}")
_MIXED_LATEX = re.compile(r"^(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$")
_MIXED_PLAIN = re.compile(r"^(-?)(\d+)\s+(\d+)\s*/\s*(\d+)$")


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


def _apply_text_macros(s: str) -> str:
    """`\\text{…}` after a value is a unit and is dropped; a lone `\\text{…}` is unwrapped."""

    def repl(m: re.Match) -> str:
        before = s[: m.start()].strip()
        if m.group(1).strip() in ("and", "or"):
            return ","
        if before and re.search(r"[\w})]$", before):
            return " "  # a unit, with its power (`\\text{cm}^2`)
        return m.group(1) + (m.group(2) or "")

    return _TEXT_MACRO.sub(repl, s)


def _repeating_decimal(m: re.Match) -> str:
    """`0.1\\overline{6}` → `\\frac{1}{6}` (the digits under the bar repeat forever)."""
    whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3)
    value = Fraction(f"{whole}.{fixed}" if fixed else whole)
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _mixed_number(item: str) -> str:
    """`2\\frac{1}{3}` / `2 1/3` (proper fraction after an integer) → `\\frac{7}{3}`."""
    m = _MIXED_LATEX.match(item) or _MIXED_PLAIN.match(item)
    if not m:
        return item
    sign, whole, num, den = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
    if den == 0 or num >= den:
        return item
    return f"{sign}\\frac{{{whole * den + num}}}{{{den}}}"


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


def _normalize_item(item: str) -> str:
    """One comma-separated item: drop a leading `x =` / `x \\in` when the rest is a value, and
    read mixed numbers. `y = 2x+1` stays an equation, since the other side may be one."""
    item = item.strip()
    m = _LHS_VARIABLE.match(item)
    if m:
        rest = item[m.end() :].strip()
        letters = re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", rest))
        if rest and "=" not in rest and ("\\in" in m.group(0) or not letters):
            item = rest
    return _mixed_number(item)


def normalize(text: str) -> str:
    """Canonical string form of an answer.

    Covers: `$`, `\\(…\\)`, `\\left`/`\\right`, spacing macros, `\\dfrac`/`\\tfrac`, degrees
    (`^\\circ`, `°`), percent signs (`50\\%` reads as 50, not 0.5), `\\text{…}` units after a
    value, thousands separators (only 3-digit groups: `1,000` → 1000 but `1,00` stays a list), a
    few Unicode symbols (√ ½ ∞ − × · ÷ π ≤ ≥ ∪), mixed numbers (`2\\frac{1}{3}`, `2 1/3` → 7/3),
    repeating decimals (`0.\\overline{3}` → 1/3), trailing periods, `and`/`or` between answers
    (→ `,`), and a leading `x =` / `x \\in` in front of each comma-separated item.
    """
    s = "".join(_UNICODE.get(ch, ch) for ch in text)
    for old, new in _LITERAL:
        if old in s:
            s = s.replace(old, new)
    s = _apply_text_macros(s)
    s = _REPEATING.sub(_repeating_decimal, s)
    s = _WORD_SEPARATORS.sub(",", s)
    s = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), s)
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip(".").rstrip()
    if "," in s or "=" in s or "\\in" in s:
        s = ",".join(_normalize_item(p) for p in _split_top_level(s))
    else:
        s = _mixed_number(s)
    return re.sub(r"\s*([=,+\-*/^(){}\[\]])\s*", r"\1", s)
