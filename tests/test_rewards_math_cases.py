"""Hand-labelled case table for `rewards.math.is_equivalent`: (gold, pred, label, category).

Every label is decided by hand from the spec (see `rewards/math/reward.py` and `rewards/math/compare.py`
for the documented policies: decimals need >= 3 significant digits and must be the exact value
rounded or truncated; multiple answers compare as sets; `50\\%` reads as 50).
"""

from __future__ import annotations

from collections import Counter

import pytest

from rewards.math import check_many_verdicts

T, F = True, False
CASES = [
    # integers, signs, spacing
    ("42", "42", T, "integer"),
    ("42", "43", F, "integer"),
    ("-7", "-7", T, "integer"),
    ("-7", "7", F, "integer"),
    ("0", "-0", T, "integer"),
    ("12", "012", T, "integer"),
    ("3", "3.0", T, "integer"),
    ("3", "3.5", F, "integer"),
    ("100", "1e2", T, "integer"),
    ("1000000", "10^6", T, "integer"),
    ("5", " 5 ", T, "integer"),
    ("5", "+5", T, "integer"),
    # fractions and rationals
    ("\\frac{1}{2}", "1/2", T, "rational"),
    ("\\frac{1}{2}", "0.5", T, "rational"),
    ("\\frac{1}{2}", "\\dfrac{2}{4}", T, "rational"),
    ("\\frac{1}{2}", "\\tfrac12", T, "rational"),
    ("\\frac{1}{2}", "\\frac{1}{3}", F, "rational"),
    ("-\\frac{3}{4}", "\\frac{-3}{4}", T, "rational"),
    ("-\\frac{3}{4}", "-0.75", T, "rational"),
    ("-\\frac{3}{4}", "0.75", F, "rational"),
    ("\\frac{6}{4}", "\\frac{3}{2}", T, "rational"),
    ("\\frac{7}{3}", "2\\frac{1}{3}", T, "mixed"),
    ("\\frac{7}{3}", "2 1/3", T, "mixed"),
    ("-\\frac{5}{2}", "-2\\frac{1}{2}", T, "mixed"),
    ("\\frac{7}{3}", "2\\frac{1}{4}", F, "mixed"),
    ("1.5", "\\frac{3}{2}", T, "rational"),
    ("2", "\\frac{4}{2}", T, "rational"),
    ("\\frac{1}{2}", "\\frac{1}{2}+0", T, "rational"),
    ("\\frac{3}{5}", "3:5", T, "rational"),  # a ratio a:b is the fraction a/b
    # decimals and the rounding policy
    ("\\frac{1}{3}", "0.3333", T, "decimal"),
    ("\\frac{1}{3}", "0.333", T, "decimal"),
    ("\\frac{1}{3}", "0.33", F, "decimal"),
    ("\\frac{1}{3}", "0.3334", F, "decimal"),
    ("\\frac{2}{3}", "0.667", T, "decimal"),
    ("\\frac{2}{3}", "0.666", T, "decimal"),
    ("\\frac{2}{3}", "0.67", F, "decimal"),
    ("\\frac{2}{3}", "0.665", F, "decimal"),
    ("0.25", "\\frac{1}{4}", T, "decimal"),
    ("0.25", "0.250", T, "decimal"),
    ("0.25", "0.26", F, "decimal"),
    ("0.33", "\\frac{1}{3}", F, "decimal"),
    ("3.14159", "\\pi", T, "decimal"),
    ("\\pi", "3.14", T, "decimal"),
    ("\\pi", "3.1", F, "decimal"),
    ("\\pi", "3.15", F, "decimal"),
    ("\\sqrt{2}", "1.414", T, "decimal"),
    ("\\sqrt{2}", "1.41421356", T, "decimal"),
    ("\\sqrt{2}", "1.5", F, "decimal"),
    ("-\\frac{1}{3}", "-0.3333", T, "decimal"),
    ("-\\frac{1}{3}", "0.3333", F, "decimal"),
    ("\\frac{100}{3}", "33.33", T, "decimal"),
    ("\\frac{1}{7}", "0.142857", T, "decimal"),
    # e-notation and thousands separators
    ("1500", "1.5e3", T, "e-notation"),
    ("0.0002", "2E-4", T, "e-notation"),
    ("1500", "1.5 \\times 10^3", T, "e-notation"),
    ("1500", "1.5e4", F, "e-notation"),
    ("1000", "1,000", T, "thousands"),
    ("1234567", "1,234,567", T, "thousands"),
    ("1000", "1\\,000", T, "thousands"),
    ("100", "1,00", F, "thousands"),
    ("1,2", "1, 2", T, "thousands"),
    ("1000000", "1,000,000", T, "thousands"),
    # LaTeX wrappers and normalisation
    ("5", "$5$", T, "latex"),
    ("5", "\\(5\\)", T, "latex"),
    ("5", "\\$5", T, "latex"),
    ("1000", "1,\\!000", T, "thousands"),
    ("\\frac{1}{3}", "0.\\overline{3}", T, "decimal"),
    ("\\frac{1}{6}", "0.1\\overline{6}", T, "decimal"),
    ("\\frac{1}{6}", "0.\\overline{16}", F, "decimal"),
    ("2i", "\\sqrt{-4}", T, "symbolic"),
    ("-2i", "\\sqrt{-4}", F, "symbolic"),
    ("\\frac{\\sqrt{3}}{2}", "0.866", T, "decimal"),
    ("\\frac{\\sqrt{3}}{2}", "0.87", F, "decimal"),
    ("10\\%", "0.1", T, "percent"),  # p% is p or p/100
    ("5", "\\boxed{5}", T, "latex"),
    ("5", "\\left(5\\right)", T, "latex"),
    ("5", "5.", T, "latex"),
    ("5", "\\displaystyle 5", T, "latex"),
    ("5", "\\mathbf{5}", T, "latex"),
    ("\\frac{1}{2}", "\\frac 1 2", T, "latex"),
    ("30", "30^\\circ", T, "degrees"),
    ("30", "30^{\\circ}", T, "degrees"),
    ("30", "30°", T, "degrees"),
    ("50", "50\\%", T, "percent"),
    ("50", "50%", T, "percent"),
    ("50\\%", "50", T, "percent"),
    ("12", "12 \\text{ cm}", T, "units"),
    ("12", "12\\text{cm}^2", T, "units"),
    ("12", "12\\mathrm{~m}", T, "units"),
    ("12", "13 \\text{ cm}", F, "units"),
    ("\\text{(B)}", "B", T, "string"),
    # unicode
    ("\\sqrt{2}", "√2", T, "unicode"),
    ("\\frac{1}{2}", "½", T, "unicode"),
    ("-3", "−3", T, "unicode"),
    ("6", "2×3", T, "unicode"),
    ("\\infty", "∞", T, "unicode"),
    ("\\pi", "π", T, "unicode"),
    ("2\\frac{1}{2}", "2½", T, "unicode"),
    # variable prefixes
    ("2", "x = 2", T, "prefix"),
    ("2", "x=3", F, "prefix"),
    ("-1", "a = -1", T, "prefix"),
    ("\\frac{1}{2}", "k=\\frac12", T, "prefix"),
    # symbolic
    ("2\\sqrt{3}", "\\sqrt{12}", T, "symbolic"),
    ("\\sqrt{8}", "2\\sqrt{2}", T, "symbolic"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", T, "symbolic"),
    ("2\\pi", "\\pi \\cdot 2", T, "symbolic"),
    ("2\\pi", "2 \\pi r", F, "symbolic"),
    ("x^2+2x+1", "(x+1)^2", T, "symbolic"),
    ("x^2+2x+1", "(x+1)^2+1", F, "symbolic"),
    ("\\sin^2 x + \\cos^2 x", "1", T, "symbolic"),
    ("\\frac{x^2-1}{x-1}", "x+1", T, "symbolic"),
    ("2x", "x2", T, "symbolic"),
    ("e^{i\\pi}", "-1", T, "symbolic"),
    ("\\log_2 8", "3", T, "symbolic"),
    ("\\ln(e^2)", "2", T, "symbolic"),
    ("\\sqrt[3]{27}", "3", T, "symbolic"),
    ("\\sqrt[3]{-8}", "-2", T, "symbolic"),
    ("\\binom{5}{2}", "10", T, "symbolic"),
    ("5!", "120", T, "symbolic"),
    ("3+4i", "4i+3", T, "symbolic"),
    ("3+4i", "3-4i", F, "symbolic"),
    ("\\frac{\\pi}{4}", "45", F, "symbolic"),
    ("\\sqrt{x^2}", "|x|", T, "symbolic"),
    ("\\sqrt{x^2}", "x", F, "symbolic"),
    ("\\tan x", "\\frac{\\sin x}{\\cos x}", T, "symbolic"),
    ("a b", "ba", T, "symbolic"),
    ("\\frac{a}{b}", "\\frac{b}{a}", F, "symbolic"),
    ("2^{10}", "1024", T, "symbolic"),
    ("\\sqrt{16}", "4", T, "symbolic"),
    ("\\alpha + 1", "1+\\alpha", T, "symbolic"),
    # intervals and inequalities
    ("(1, 2]", "(1,2]", T, "interval"),
    ("(1, 2]", "[1, 2]", F, "interval"),
    ("(1, 2]", "(1, 2)", F, "interval"),
    ("[0, \\infty)", "[0,\\infty)", T, "interval"),
    ("(-\\infty, 3)", "\\left(-\\infty, 3\\right)", T, "interval"),
    ("(-\\infty, 3)", "(-\\infty, 3]", F, "interval"),
    ("[\\frac{1}{2}, 1)", "[0.5, 1)", T, "interval"),
    ("(-\\infty,1)\\cup(2,\\infty)", "(2,\\infty)\\cup(-\\infty,1)", T, "interval"),
    ("(-\\infty,1)\\cup(2,\\infty)", "(-\\infty,1)", F, "interval"),
    ("x \\in (1, 2)", "(1,2)", T, "interval"),
    ("x > 3", "3 < x", T, "inequality"),
    ("x \\ge 3", "x > 3", F, "inequality"),
    ("1 < x \\le 2", "1<x\\leq 2", T, "inequality"),
    # sets, multiple answers, tuples
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}", T, "set"),
    ("\\{1, 2, 3\\}", "\\{1, 2\\}", F, "set"),
    ("\\{1, 2\\}", "\\{1, 2, 3\\}", F, "set"),
    ("\\{1, 2\\}", "1, 2", T, "set"),
    ("1, 2", "2, 1", T, "multiple"),
    ("1, 2", "1", F, "multiple"),
    ("1", "1, 2", F, "multiple"),
    ("x = 1, x = -1", "\\pm 1", T, "multiple"),
    ("1, -1", "\\{-1, 1\\}", T, "multiple"),
    ("3 \\pm \\sqrt{2}", "3+\\sqrt2, 3-\\sqrt2", T, "multiple"),
    ("2, 3", "x=2 \\text{ or } x=3", T, "multiple"),
    ("2, 3", "2 and 3", T, "multiple"),
    ("2, 3", "2, 3, 3", T, "multiple"),
    ("\\emptyset", "\\{\\}", T, "set"),
    ("(1, 2)", "(1, 2)", T, "tuple"),
    ("(1, 2)", "(2, 1)", F, "tuple"),
    ("(1, 2, 3)", "(1,2,3)", T, "tuple"),
    ("(1, 2, 3)", "(1, 2)", F, "tuple"),
    ("(\\frac{1}{2}, 3)", "(0.5, 3)", T, "tuple"),
    ("\\langle 1, 2 \\rangle", "(1, 2)", T, "tuple"),
    ("\\{(1,2),(3,4)\\}", "\\{(3,4),(1,2)\\}", T, "set"),
    # matrices
    (
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
        T,
        "matrix",
    ),
    (
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
        "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}",
        F,
        "matrix",
    ),
    ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1, 2)", T, "matrix"),
    (
        "\\begin{pmatrix}\\frac12&0\\\\0&1\\end{pmatrix}",
        "\\begin{pmatrix}0.5&0\\\\0&1\\end{pmatrix}",
        T,
        "matrix",
    ),
    ("\\begin{pmatrix}1&2\\end{pmatrix}", "\\begin{pmatrix}1&2&3\\end{pmatrix}", F, "matrix"),
    # equations
    ("y = 2x + 1", "y=1+2x", T, "equation"),
    ("y = 2x + 1", "2x - y + 1 = 0", T, "equation"),
    ("y = 2x + 1", "y = 2x - 1", F, "equation"),
    ("y = 2x + 1", "2x+1", T, "equation"),
    ("x^2 + y^2 = 1", "y^2 + x^2 = 1", T, "equation"),
    ("x^2 + y^2 = 1", "x^2+y^2=2", F, "equation"),
    # extraction from completions (pred may be a whole completion)
    ("4", "<think>maybe 3</think><answer>4</answer>", T, "extraction"),
    ("3", "<think>maybe 3</think><answer>4</answer>", F, "extraction"),
    ("4", "<think>\\boxed{4}</think><answer>5</answer>", F, "extraction"),
    ("4", "<answer>3</answer> wait <answer>4</answer>", T, "extraction"),
    ("4", "<answer>so \\boxed{4}</answer>", T, "extraction"),
    ("4", "<answer></answer>", F, "extraction"),
    ("4", "<answer>4", F, "extraction"),
    ("4", "<think>the answer is 4", F, "extraction"),
    ("4", "thus \\boxed{4}.", T, "extraction"),
    ("4", "\\boxed{3} no, \\boxed{4}", T, "extraction"),
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{2}}", T, "extraction"),
    ("4", "", F, "extraction"),
    # strings and words
    ("\\text{yes}", "yes", T, "string"),
    ("\\text{yes}", "no", F, "string"),
    ("A", "a", F, "string"),
    ("\\text{Tuesday}", "Tuesday", T, "string"),
    ("\\text{Tuesday}", "Tuesady", F, "string"),
    ("\\text{yes}", "sey", F, "string"),
    # injection attempts: must be rejected (and never executed)
    ("0", "__import__('os').system('echo pwned')", F, "injection"),
    ("2", "eval('1+1')", F, "injection"),
    ("2", 'exec("x=2")', F, "injection"),
    ("1", "lambda: 1", F, "injection"),
    ("0", "().__class__.__bases__[0]", F, "injection"),
    ("3", "Integer(3)", F, "injection"),
    ("2", "${1+1}", T, "injection"),
    ("1", "open('/etc/passwd').read()", F, "injection"),
    # denial-of-service inputs: must come back quickly as string comparison
    ("1", "9^{9^{9^{9}}}", F, "dos"),
    ("1", "2^{2^{2^{2^{2^{2}}}}}", F, "dos"),
    ("1", "10^{10^{10}}", F, "dos"),
    ("1", "(10^{100})!", F, "dos"),
    ("1", "100000!", F, "dos"),
    ("1", "(" * 43 + "1" + ")" * 43, F, "dos"),
    ("1", "1" + "+1" * 2000, F, "dos"),
    ("1", "x^{10^{9}}", F, "dos"),
    ("1", "(x+y+z)^{1000}", F, "dos"),
    ("1", "\\frac{" * 200 + "1" + "}{2}" * 200, F, "dos"),
    ("2", "1" * 5000, F, "dos"),
    ("1", "1e999999", F, "dos"),
    ("9^{9^{9^{9}}}", "9^{9^{9^{9}}}", T, "dos"),
]


def test_case_table_is_big_and_covers_every_category():
    assert len(CASES) >= 150
    counts = Counter(c for *_, c in CASES)
    for category in (
        "integer",
        "rational",
        "decimal",
        "mixed",
        "e-notation",
        "thousands",
        "latex",
        "degrees",
        "percent",
        "units",
        "unicode",
        "prefix",
        "symbolic",
        "interval",
        "set",
        "tuple",
        "multiple",
        "matrix",
        "equation",
        "extraction",
        "injection",
        "dos",
    ):
        assert counts[category] >= 2, category


@pytest.fixture(scope="module")
def verdicts():
    return check_many_verdicts([(pred, gold) for gold, pred, _, _ in CASES])


def test_every_labelled_pair_gets_its_label(verdicts):
    wrong = [
        (gold, pred, label, v)
        for (gold, pred, label, _), v in zip(CASES, verdicts)
        if v.equal != label
    ]
    assert not wrong, "\n".join(map(repr, wrong))


def test_no_labelled_pair_times_out_or_errors(verdicts):
    bad = [(c[:2], v.method) for c, v in zip(CASES, verdicts) if v.method in ("timeout", "error")]
    assert not bad


def test_denial_of_service_inputs_never_reach_sympy(verdicts):
    methods = {v.method for c, v in zip(CASES, verdicts) if c[3] == "dos"}
    assert methods <= {"guard", "parse", "string"}


def test_rational_cases_are_decided_without_sympy(verdicts):
    fast = {"integer", "rational", "mixed", "e-notation", "thousands", "percent", "prefix"}
    methods = {v.method for c, v in zip(CASES, verdicts) if c[3] in fast}
    assert "symbolic" not in methods


def test_in_process_verdicts_agree_with_the_sympy_back_end(verdicts):
    from rewards.math.normalize import extract_answer, normalize
    from rewards.math.symbolic import check_symbolic

    disagree = []
    for (gold, pred, _, _), v in zip(CASES, verdicts):
        if v.method == "exact":
            g, p = normalize(extract_answer(gold)), normalize(extract_answer(pred))
            if check_symbolic(g, p) != v.equal:
                disagree.append((gold, pred, v.equal))
    assert not disagree
