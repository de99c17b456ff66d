"""Extraction, normalisation and parsing of math answers (pure functions, no sympy, no pool)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from rewards.math.exact import NotExact, exact_value, guard
from rewards.math.normalize import extract_answer, normalize
from rewards.math.parse import ParseError, TooBig, parse_answer


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<think>\\boxed{1}</think><answer>2</answer>", "2"),
        ("<think>a</think><answer>1</answer><answer>3</answer>", "3"),
        ("<answer>x \\boxed{\\frac{1}{2}} and \\boxed{7}</answer>", "7"),
        ("<answer>\\boxed{\\frac{a}{b}}</answer>", "\\frac{a}{b}"),
        ("no tags, \\boxed{5} then \\boxed{6}.", "6"),
        ("no tags at all ", "no tags at all"),
        ("<answer>  \\boxed{3 </answer>", "\\boxed{3"),  # unbalanced box: the whole content
        ("<answer>4</answer><think>later thoughts \\boxed{9}", "4"),
    ],
)
def test_extraction_picks_the_last_answer_outside_think(completion, expected):
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "<answer></answer>",
        "<answer>   </answer>",
        "<answer>5",
        "<think>5</think>",
        "<think>unterminated <answer>5</answer>",
        "",
        "\\boxed{}",
    ],
)
def test_empty_unterminated_or_think_only_answers_are_no_answer(completion):
    assert extract_answer(completion) is None


def test_non_string_completion_is_no_answer():
    assert extract_answer(None) is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("$\\dfrac{3}{4}$", "\\frac{3}{4}"),
        ("\\left[ 1, 2 \\right)", "[1,2)"),
        ("1,234,567", "1234567"),
        ("12,34", "12,34"),
        ("90^\\circ", "90\\degree"),
        ("25\\%", "25\\%"),
        ("25 percent", "25\\%"),
        ("3\\text{ apples}", "3\\unit{apples}"),
        ("12\\text{cm}^2", "12\\unit{cm^2}"),
        ("\\text{east}", "\\text{east}"),
        ("\\text{(B)}", "(B)"),
        ("x = -4", "x=-4"),
        ("x \\in [1, 2)", "[1,2)"),
        ("y = 3x", "y=3x"),
        ("2\\frac{3}{4}", "\\frac{11}{4}"),
        ("3 1/2", "\\frac{7}{2}"),
        ("2\\frac{5}{4}", "2\\frac{5}{4}"),
        ("7.", "7"),
        ("½ − ∞", "\\frac{1}{2}-\\infty"),
        ("a \\, b\\quad c", "a b c"),
        ("1\\,000", "1000"),
        ("1 or 2", "1,2"),
    ],
)
def test_normalisation_rewrites_to_the_canonical_string(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "text, tree",
    [
        ("2x", ("mul", (("int", 2), ("sym", "x")))),
        ("-2^2", ("neg", ("pow", ("int", 2), ("int", 2)))),
        ("2^3^2", ("pow", ("int", 2), ("pow", ("int", 3), ("int", 2)))),
        ("\\frac12", ("div", ("int", 1), ("int", 2))),
        ("1/2x", ("mul", (("div", ("int", 1), ("int", 2)), ("sym", "x")))),
        ("[1, 2)", ("interval", True, ("int", 1), ("int", 2), False)),
        ("(1, 2)", ("tuple", (("int", 1), ("int", 2)))),
        ("\\{1\\}", ("set", (("int", 1),))),
        ("x_{12}", ("sym", "x_12")),
        ("\\sqrt[3]{x}", ("root", ("sym", "x"), ("int", 3))),
        ("\\log_2 x", ("func", "log", (("sym", "x"), ("int", 2)))),
        ("3!", ("fact", ("int", 3))),
        ("x\\ge1", ("rel", ("<=",), (("int", 1), ("sym", "x")))),
        ("1.50", ("dec", "1.50")),
    ],
)
def test_parser_builds_the_expected_tree(text, tree):
    assert parse_answer(text) == tree


@pytest.mark.parametrize(
    "text, message",
    [
        ("(1, 2", "unclosed"),
        ("2 +", "end-of-input"),
        ("\\foo", "\\\\foo"),
        ("a?b", "position 1"),
        ("(1, 2, 3]", "not an interval"),
        ("2 Monday", "word 'Monday'"),
        ("1 + 2 )", "unexpected '\\)'"),
        ("2 3", "two numbers side by side"),
        ("-[0, 1)", "interval cannot be used as a number"),
    ],
)
def test_malformed_input_raises_a_parse_error_naming_the_problem(text, message):
    with pytest.raises(ParseError, match=message):
        parse_answer(text)


@pytest.mark.parametrize(
    "text",
    [
        "1" * 700,
        "(" * 50 + "1" + ")" * 50,
        "1" * 80,
        "1e500",
        "+".join(["x"] * 200),
    ],
)
def test_oversized_input_is_rejected_while_parsing(text):
    with pytest.raises(TooBig):
        parse_answer(text)


@pytest.mark.parametrize(
    "text",
    [
        "9^{9^{9}}",
        "2^{100000}",
        "(10^{50})^{1000}",
        "x^{1000}",
        "1001!",
        "(5!)!!",
        "x^{y^{z^{w}}}",
        "\\binom{5000}{2}",
    ],
)
def test_guard_rejects_values_too_large_for_sympy(text):
    with pytest.raises(TooBig):
        guard(parse_answer(text))


@pytest.mark.parametrize("text", ["2^{100}", "x^{50}", "e^{x^2}", "100!", "(x+1)^{10}", "2^{x}"])
def test_guard_accepts_ordinary_sizes(text):
    guard(parse_answer(text))


@pytest.mark.parametrize(
    "text, value",
    [
        ("\\frac{6}{4}", Fraction(3, 2)),
        ("-0.125", Fraction(-1, 8)),
        ("2^{-2}", Fraction(1, 4)),
        ("\\sqrt{\\frac{9}{16}}", Fraction(3, 4)),
        ("\\sqrt[3]{-27}", Fraction(-3)),
        ("8^{\\frac{2}{3}}", Fraction(4)),
        ("\\binom{6}{3}", Fraction(20)),
        ("|-3|", Fraction(3)),
        ("1.5e3", Fraction(1500)),
        ("5!/3!", Fraction(20)),
    ],
)
def test_exact_values_match_hand_computation(text, value):
    assert exact_value(parse_answer(text)) == value


@pytest.mark.parametrize("text", ["\\sqrt{2}", "\\pi", "x", "1/0", "\\infty-\\infty", "(-1)^{1/2}"])
def test_irrational_symbolic_or_undefined_values_are_not_exact(text):
    with pytest.raises(NotExact):
        exact_value(parse_answer(text))


@pytest.mark.parametrize(
    "text, tree",
    [
        ("3:2", ("ratio", (("int", 3), ("int", 2)))),
        ("28\\%", ("pct", ("int", 28))),
        ("-5\\%", ("pct", ("neg", ("int", 5)))),
        ("30\\degree", ("deg", ("int", 30))),
        ("5\\unit{cm^2}", ("unit", ("int", 5), "cm^2")),
        ("x=1+2=3", ("chain", (("sym", "x"), ("add", (("int", 1), ("int", 2))), ("int", 3)))),
        ("\\text{Area}=5", ("eq", ("label", "Area"), ("int", 5))),
        ("{1,3}", ("set", (("int", 1), ("int", 3)))),
        ("\\{x|x>0\\}", ("builder", ("sym", "x"), ("rel", ("<",), (("int", 0), ("sym", "x"))))),
        ("2\\frac{1}{3}", ("div", ("int", 7), ("int", 3))),
        ("y'", ("sym", "y'")),
        ("\\reals", ("interval", False, ("neg", ("const", "oo")), ("const", "oo"), False)),
        (
            "x>1\\land x<2",
            (
                "and",
                (
                    ("rel", ("<",), (("int", 1), ("sym", "x"))),
                    ("rel", ("<",), (("sym", "x"), ("int", 2))),
                ),
            ),
        ),  # fmt: skip
    ],
)
def test_parser_builds_trees_for_marked_labelled_and_set_answers(text, tree):
    assert parse_answer(text) == tree


def test_sine_of_degrees_is_parsed_in_radians():
    arg = parse_answer("\\sin 30\\degree")[2][0]
    assert arg == ("mul", (("int", 30), ("div", ("const", "pi"), ("int", 180))))


def test_a_vmatrix_is_its_determinant_expanded_along_the_first_row():
    tree = parse_answer("\\begin{vmatrix}1&2\\\\3&4\\end{vmatrix}")
    assert exact_value(tree) == -2


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("5{,}000", "5000"),
        ("11,\\!111,\\!100", "11111100"),
        ("1 234 567", "1234567"),
        ("(2,12)\\cup(12,102)", "(2,12)\\cup(12,102)"),
        ("1,234,56", "1,234,56"),
        ("3{,}5", "3.5"),
        ("0.1(6)", "\\frac{1}{6}"),
        ("\\$18.50", "18.50\\unit{dollar}"),
        ("6 \\text{ or } 7", "6,7"),
        ("x<1 and x>2", "x<1\\land x>2"),
        ("2\\frac{1}{3}\\text{ kg}", "2\\frac{1}{3}\\unit{kg}"),
        ("30°C", "30\\unit{°C}"),
        ("\\begin{pmatrix}1\\\\ 2\\end{pmatrix}", "\\begin{pmatrix}1\\\\ 2\\end{pmatrix}"),
    ],
)
def test_number_formats_and_markers_are_normalised(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "unit, factor, dims",
    [
        ("cm", Fraction(1, 100), (("length", 1),)),
        ("square feet", Fraction(3048, 10000) ** 2, (("length", 2),)),
        ("km per hour", Fraction(1000, 3600), (("length", 1), ("time", -1))),
        ("mL", Fraction(1, 10**6), (("length", 3),)),
    ],
)
def test_known_units_have_exact_factors_and_dimensions(unit, factor, dims):
    from rewards.math.units import read_unit

    read = read_unit(unit)
    assert (read.factor, read.dims) == (factor, dims)


def test_unknown_units_keep_a_singular_case_folded_key():
    from rewards.math.units import read_unit

    assert read_unit("Apples") == read_unit("apple")
    assert read_unit("apples").factor is None


@pytest.mark.parametrize(
    "text, number",
    [
        ("18 clips", "18"),
        ("The answer is 18", "18"),
        ("Answer: 18", "18"),
        ("18 or 19", None),
        ("not 18", None),
        ("18 x", None),
        ("lambda: 1", None),
        ("one two three four five six seven eight nine 18", None),
    ],
)
def test_prose_gives_its_one_number_only_without_hedges(text, number):
    from rewards.math.words import prose_number

    assert prose_number(text) == number


def test_intervals_and_points_merge_into_a_canonical_set():
    from rewards.math.sets import canonical, set_reading

    merged = canonical(set_reading(parse_answer("(0,1)\\cup\\{1\\}\\cup(1,2]")))
    assert merged == ((Fraction(0), False, Fraction(2), True),)


@pytest.mark.parametrize(
    "text, stated",
    [
        ("x=5", (("sym", "x"), ("int", 5))),
        ("3=x", (("sym", "x"), ("int", 3))),
        ("1+2=3", (None, ("int", 3))),
        ("x-3=0", None),
        ("2x=6", None),
    ],
)
def test_labels_and_chains_state_a_value_but_equations_do_not(text, stated):
    from rewards.math.labels import reading

    assert reading(parse_answer(text)) == stated
