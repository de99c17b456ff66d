"""Answer extraction in the two modes (rewards.math.extract): labelled cases, hostile inputs."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from envs.base import Task
from rewards.math import math_reward
from rewards.math.extract import MODES, check_mode, explain_answer, graded_answer
from rewards.math.spans import clean_answer


class Case(NamedTuple):
    completion: str
    mode: str
    expected: str | None
    reason: str


S, L = "strict", "lenient"
B = "\\boxed"

STRICT = [
    Case("<think>r</think><answer>5</answer>", S, "5", "the block after the reasoning"),
    Case("<answer>5</answer>", S, "5", "a block without reasoning"),
    Case("<think></think><answer>3</answer>", S, "3", "an empty think still ends the reasoning"),
    Case("r</think><answer>3</answer>", S, "3", "a prefilled completion starts inside think"),
    Case("<think>r</think>The answer is 5.", S, None, "prose after the reasoning is not read"),
    Case("The answer is 5.", S, None, "prose without tags is not read"),
    Case("5", S, None, "a bare number is no explicit answer"),
    Case("<think>so \\boxed{5}</think>", S, None, "a box inside think only"),
    Case("<think>\\boxed{5}</think><answer>6</answer>", S, "6", "a box in think is reasoning"),
    Case("<think><answer>5</answer></think><answer>6</answer>", S, "6", "answer-in-think decoy"),
    Case("<think>so <answer>5</answer></think>", S, None, "an answer only inside think"),
    Case("<think>never closed <answer>5</answer>", S, None, "an unclosed think swallows all"),
    Case("<think>r</think><answer>5</answer><answer>6</answer>", S, None, "wrong then right"),
    Case("<think>r</think><answer>6</answer><answer>5</answer>", S, None, "right then wrong"),
    Case("<answer>5</answer><answer> 5 </answer>", S, "5", "two blocks with one answer"),
    Case(f"<answer>{B}{{5}}</answer><answer>5</answer>", S, "5", "a boxed and a plain block agree"),
    Case("<answer>1/2</answer><answer>0.5</answer>", S, None, "blocks are compared as strings"),
    Case("<answer></answer>", S, None, "an empty block"),
    Case("<answer>   </answer>", S, None, "a blank block"),
    Case("<answer></answer><answer>7</answer>", S, "7", "an empty block carries no answer"),
    Case("<answer>7</answer><answer></answer>", S, "7", "a trailing empty block too"),
    Case("<answer>5", S, None, "an unclosed block"),
    Case("<answer>5</answer><answer>6", S, None, "an unclosed second block"),
    Case(
        "<think>r</think><answer>5 </think> 7</answer>", S, None, "</think> injected in the block"
    ),
    Case(
        "<think>r</think><answer>5</answer>7</answer>", S, None, "</answer> injected in the block"
    ),
    Case("<think>r</think><answer>5 <answer>7</answer>", S, None, "a nested <answer>"),
    Case(
        "<answer>4</answer><think>again \\boxed{9}", S, None, "reasoning resumed after the answer"
    ),
    Case("Use <answer> </answer>.<think>r</think><answer>8</answer>", S, "8", "a prompt echo"),
    Case("Reply in <answer></answer> tags. <answer>8</answer>", S, "8", "an echo without think"),
    Case(f"<answer>{B}{{\\frac{{1}}{{2}}}}</answer>", S, "\\frac{1}{2}", "nested braces in a box"),
    Case(f"<answer>{B}{{\\{{1, 2\\}}}}</answer>", S, "\\{1, 2\\}", "escaped braces in a box"),
    Case(f"<answer>{B}{{{B}{{4}}}}</answer>", S, "4", "a box inside a box"),
    Case(f"<answer>{B}{{5}} and {B}{{6}}</answer>", S, None, "two different boxes in the block"),
    Case(f"<answer>{B}{{5}}, so {B}{{5}}</answer>", S, "5", "the same box twice"),
    Case(f"<answer>{B}{{5}} or 7</answer>", S, None, "a box beside another number"),
    Case(f"<answer>2+3 = {B}{{5}}</answer>", S, None, "working beside the box has numbers"),
    Case(f"<answer>x_1 = {B}{{5}}</answer>", S, "5", "a subscript is no number"),
    Case(f"<answer>The answer is ${B}{{18}}$.</answer>", S, "18", "words around the box"),
    Case(f"<answer>{B}{{5}} cm</answer>", S, "5", "the box is the answer, the unit is outside"),
    Case(f"<answer>{B}{{5</answer>", S, None, "an unbalanced box in the block"),
    Case(f"<answer>{B}{{}}</answer>", S, None, "an empty box"),
    Case("<answer>\\fbox{4}</answer>", S, "4", "fbox counts as a box"),
    Case(f"<answer>{B} {{4}}</answer>", S, "4", "a space before the brace"),
    Case(f"no tags, {B}{{5}} then {B}{{5}}.", S, "5", "untagged boxes that agree"),
    Case(f"no tags, {B}{{5}} then {B}{{6}}.", S, None, "untagged boxes that differ"),
    Case(f"<think>r</think>so {B}{{7}}", S, "7", "a box after the reasoning"),
    Case(f"<think>r</think>{B}{{7}} and {B}{{7", S, None, "an unbalanced box after the reasoning"),
    Case(f"<think>r</think>{B}{{5}}<answer>6</answer>", S, None, "a stray box that disagrees"),
    Case(f"<think>r</think>{B}{{6}}<answer>6</answer>", S, "6", "a stray box that agrees"),
    Case("<think>r</think>Answer: 5.<answer>6</answer>", S, "6", "an early Answer: decoy"),
    Case("<answer>The answer is 18.</answer>", S, "18", "a leading answer phrase is dropped"),
    Case("<answer>Answer: 18</answer>", S, "18", "Answer: is dropped"),
    Case("<answer>Final answer: 18</answer>", S, "18", "Final answer: is dropped"),
    Case("<answer>**Answer:** 18</answer>", S, "18", "a bold Answer: is dropped"),
    Case("<answer>18 clips</answer>", S, "18 clips", "units pass through to the equivalence"),
    Case("<answer>$18</answer>", S, "$18", "a dollar amount passes through"),
    Case("<answer> $\\frac{3}{4}$ </answer>", S, "\\frac{3}{4}", "enclosing $ are dropped"),
    Case("<answer>\\(x+1\\)</answer>", S, "x+1", "enclosing \\( \\) are dropped"),
    Case("<answer>6 or 7</answer>", S, "6 or 7", "a hedge stays whole for the equivalence"),
    Case("<answer>5!</answer>", S, "5!", "a trailing ! may be a factorial"),
    Case("<answer>answer</answer>", S, "answer", "a lone word is not an answer phrase"),
]

LENIENT = [
    Case("Final Answer: The largest n is 34.", L, "34", "a clause '<words> is X'"),
    Case("Therefore $x \\geq 5$ is the solution.", L, "x \\geq 5", "a clause 'X is the solution'"),
    Case(
        "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
        L,
        "\\frac{1}{2}",
        "Minerva's answer format",
    ),
    Case("The answer is 42.", L, "42", "the answer is"),
    Case("The answer is: 3.5.", L, "3.5", "a decimal before the full stop"),
    Case("So the answer is 6 or 7.", L, "6 or 7", "a hedge stays whole"),
    Case("**Answer:** 12", L, "12", "a bold answer label"),
    Case("Janet earns 18 dollars.\n#### 18", L, "18", "the GSM8K marker"),
    Case("Final Answer:\n\n5", L, "5", "the answer on a later line"),
    Case("The answer is 5 because 5 is prime.", L, "5", "a because clause ends the phrase"),
    Case("The answer is 5, so I'm done", L, "5", "a so clause ends the phrase"),
    Case("Thus the total is 45 dollars.", L, "45 dollars", "Thus … is, units kept"),
    Case("The final answer is $2$ and $3$.", L, "$2$ and $3$", "two math spans stay together"),
    Case("The answer is 5. Wait, no. Final answer: 7", L, "7", "an early decoy, a later answer"),
    Case("Answer: 5\nchecking again\nThe answer is 8.", L, "8", "the last anchored phrase"),
    Case(f"We get {B}{{1}}, {B}{{2}}", L, "1, 2", "several boxes read together"),
    Case(f"${B}{{1}}$ and ${B}{{2}}$", L, "1, 2", "boxes joined by and"),
    Case(f"{B}{{6}} or {B}{{7}}", L, "6, 7", "hedged boxes never give one of them"),
    Case(f"{B}{{5}} and {B}{{5}}", L, "5", "equal boxes once"),
    Case(f"first {B}{{3}}. Then, redoing it, {B}{{10}}", L, "10", "the last group of boxes"),
    Case(f"The answer is {B}{{9}}, not 5.", L, "9", "boxes before phrases"),
    Case(f"Answer: ${B}{{8}}$", L, "8", "a box after a label"),
    Case(f"{B}{{\\frac{{1}}{{2}}}}", L, "\\frac{1}{2}", "nested braces in a box"),
    Case("So 3 + 4 = 7.", L, "7", "an equation at the end"),
    Case("$3 + 4 = 7$", L, "7", "an equation in a final math span"),
    Case("Therefore, x = 3.", L, "3", "a final x = value"),
    Case("The answer is $x = 5$.", L, "5", "an equation inside the phrase"),
    Case("So we need x <= 5", L, "5", "x <= 5 is no equation, the last number counts"),
    Case("The line is $y = 2x + 1$", L, "y = 2x + 1", "an equation with a variable stays whole"),
    Case("The value is $\\sqrt{2}$", L, "\\sqrt{2}", "the last math span"),
    Case("\\[ \\frac{7}{2} \\]", L, "\\frac{7}{2}", "display math"),
    Case("$$x^2$$", L, "x^2", "double-dollar math"),
    Case("We computed 12 and then 13 apples", L, "13", "the last number"),
    Case("I count 1,000 in total", L, "1,000", "thousands are kept for the normaliser"),
    Case("the answer is in the box below. We get 7 apples", L, "7", "a long wordy clause"),
    Case("Final Answer: The direction is east.", L, "east", "a one-word answer"),
    Case("The answer is (B).", L, "(B)", "a multiple-choice letter"),
    Case("no numbers here", L, None, "nothing to read"),
    Case("", L, None, "an empty completion"),
    Case("<think>r</think>The answer is 5.", L, "5", "prose after the reasoning"),
    Case("<think>The answer is 5.</think>", L, None, "an answer inside think only"),
    Case("<think>The answer is 5.</think>The answer is 6.", L, "6", "an answer-in-think decoy"),
    Case(f"<think>{B}{{5}}</think>so 6", L, "6", "a box inside think is reasoning"),
    Case("<think>never closed. The answer is 5.", L, None, "an unclosed think swallows all"),
    Case("<answer>5</answer><answer>6</answer>", L, "6", "the last block"),
    Case("<answer>The answer is 18.</answer>", L, "18", "a phrase inside the block"),
    Case("<answer>18 clips</answer>", L, "18 clips", "units pass through"),
    Case("<answer>$18</answer>", L, "$18", "a dollar amount passes through"),
    Case("<answer>5 <answer>7</answer>", L, "7", "the innermost of nested blocks"),
    Case("<answer>7", L, "7", "an unclosed last block is read to the end"),
    Case("<answer>7</answer><answer></answer>", L, "7", "empty blocks are skipped"),
    Case("<answer></answer>", L, None, "only an empty block"),
    Case("Answer in <answer></answer>. The answer is 4.", L, "4", "a prompt echo"),
    Case(
        "<think>r</think><answer>5 </think> 7</answer>", L, "7", "text after an injected </think>"
    ),
    Case("<answer>4</answer><think>again \\boxed{9}", L, "4", "reasoning resumed after the answer"),
]

CASES = STRICT + LENIENT


def test_there_are_at_least_eighty_labelled_cases_in_both_modes():
    assert len(CASES) >= 80 and {c.mode for c in CASES} == set(MODES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.mode}: {c.reason}" for c in CASES])
def test_each_labelled_completion_extracts_the_expected_answer(case):
    assert graded_answer(case.completion, case.mode) == case.expected, case.reason


@pytest.mark.parametrize(
    "completion, reason",
    [
        ("<answer>5</answer><answer>6</answer>", "several-answers"),
        (f"<answer>{B}{{5}} and {B}{{6}}</answer>", "several-boxes"),
        (f"<answer>{B}{{5}} or 7</answer>", "mixed"),
        ("<answer>5</answer>7</answer>", "tags"),
        ("<answer>5", "unclosed-answer"),
        ("<think>5", "unclosed-think"),
        (f"<answer>{B}{{5</answer>", "unclosed-box"),
        ("<answer>4</answer><think>", "think-after-answer"),
        ("The answer is 5.", "no-answer"),
    ],
)
def test_strict_failures_name_their_reason(completion, reason):
    assert explain_answer(completion, "strict") == (None, reason)


@pytest.mark.parametrize(
    "completion, rule",
    [
        (f"{B}{{1}}, {B}{{2}}", "boxes"),
        (f"so {B}{{1}}", "boxed"),
        ("So 3 + 4 = 7.", "equation"),
        ("The answer is 7.", "phrase"),
        ("<answer>18 clips</answer>", "answer"),
        ("it is $\\pi$ I think", "math"),
        ("maybe 7 apples", "number"),
    ],
)
def test_lenient_answers_name_the_rule_that_found_them(completion, rule):
    assert explain_answer(completion, "lenient")[1] == rule


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("The answer is 18.", "18"),
        ("Final Answer: The final answer is $5$.", "5"),
        ("$18", "$18"),
        ("$5$ and $6$", "$5$ and $6$"),
        ("\\boxed{\\boxed{4}}", "4"),
        ("x = 3;", "x = 3"),
    ],
)
def test_cleaning_drops_answer_phrases_punctuation_and_enclosing_delimiters(raw, cleaned):
    assert clean_answer(raw) == cleaned


def test_non_string_completions_have_no_answer_in_either_mode():
    assert graded_answer(None, "strict") is None and graded_answer(b"5", "lenient") is None


def test_an_unknown_mode_is_an_error_naming_the_modes():
    with pytest.raises(ValueError, match="'strict', 'lenient'"):
        check_mode("fuzzy")
    with pytest.raises(ValueError, match="fuzzy"):
        math_reward(["<answer>1</answer>"], [Task("p", "1")], mode="fuzzy")


def test_the_math_reward_is_strict_by_default_and_lenient_on_request():
    completions = ["The answer is 5.", "<answer>5</answer>", "<answer>5</answer><answer>6</answer>"]
    tasks = [Task("q", "5")] * 3
    assert list(math_reward(completions, tasks)) == [0.0, 1.0, 0.0]
    assert list(math_reward(completions, tasks, mode="lenient")) == [1.0, 1.0, 0.0]


def test_a_task_without_a_gold_answer_still_counts_as_an_error_when_nothing_is_extracted():
    scores = math_reward(["no answer here", "<answer>1</answer>"], [Task("p", None)] * 2)
    assert list(scores) == [0.0, 0.0] and scores.errors == 2


MB = 1_000_000
HOSTILE = {
    "boxed openers": "\\boxed{" * (MB // 7),
    "answer openers": "<answer>" * (MB // 8),
    "answer closers": "</answer>" * (MB // 9),
    "think openers": "<think>" * (MB // 7),
    "think closers": "</think>" * (MB // 8),
    "open braces": "{" * MB,
    "dollars": "$" * MB,
    "math openers": "\\(" * (MB // 2),
    "display openers": "\\[" * (MB // 2),
    "answer phrases": "Final answer: " * (MB // 14),
    "therefore without is": "Therefore " * (MB // 10),
    "digits": "9" * MB,
    "number list": "1, " * (MB // 3),
    "boxes": "\\boxed{1}, " * (MB // 11),
    "blocks": "<answer>1</answer>" * (MB // 18),
    "equals": "=" * MB,
    "nested boxes": "\\boxed{" * (MB // 14) + "}" * (MB // 14),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_megabyte_of_hostile_text_extracts_in_bounded_time(name, mode):
    result = explain_answer(HOSTILE[name], mode)
    assert result[0] is None or isinstance(result[0], str)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", MODES)
def test_an_answer_after_a_megabyte_of_reasoning_is_found(mode):
    text = "<think>" + "\\boxed{" * (MB // 7) + "</think><answer>5</answer>"
    assert graded_answer(text, mode) == "5"
    assert graded_answer("x " * (MB // 2) + "<answer>5</answer>", mode) == "5"


def test_under_a_prefilled_think_an_unclosed_reasoning_has_no_answer_and_a_closed_one_does():
    from envs.base import Task
    from rewards.math import math_reward

    tasks = [Task("2+2", "4")] * 2
    texts = ["2+2 is 4 <answer>4</answer>", "2+2 is 4 </think> <answer>4</answer>"]
    assert list(math_reward(texts, tasks, prefilled=True)) == [0.0, 1.0]
    assert list(math_reward(texts, tasks)) == [1.0, 1.0]
