"""Which text of a completion is the graded math answer, in two documented modes.

`graded_answer(completion, mode)` is the answer text or None; `explain_answer` also says which
rule decided ("answer", "boxed", "boxes", "phrase", "equation", "math", "number") or why there
is no answer ("no-answer", "unclosed-think", "think-after-answer", "unclosed-answer", "tags",
"unclosed-box", "several-answers", "several-boxes", "mixed"). This module holds the API and
`strict`; `rewards.math.lenient` the other mode; `rewards.math.spans` the scanners. Both modes
first drop the reasoning: everything up to the last `</think>` and from a later `<think>` on
(an opened, never closed think), so reasoning never counts; strict fails an answer followed
by such a `<think>` ("think-after-answer"), lenient reads the answer before it.

`strict` (the training default): nothing but an explicit answer counts, and two answers fail.
- The answer is the content of the `<answer>…</answer>` blocks after the reasoning; empty blocks
  carry no answer and are skipped; every other block must give the same answer (compared as
  strings, spaces ignored), else "several-answers". A stray `</answer>`, an `<answer>` inside a
  block or a never closed `<answer>` fail ("tags", "unclosed-answer"): injected tags make the
  answer ambiguous.
- Inside a block, complete `\\boxed{}`/`\\fbox{}` (brace-matched, outermost) decide: several
  with different contents fail ("several-boxes"), an unbalanced one fails ("unclosed-box"), and
  a number outside the box that differs from the boxed text fails ("mixed": `\\boxed{5} or 7`);
  subscripts (`x_1`) are not numbers. Without a box the block's whole text is the answer.
- With no block after the reasoning, the complete boxes there decide, all equal or nothing;
  without one there is no answer (prose is never read: a policy must not be paid for guessing
  which sentence the grader will pick). A box after the reasoning but outside the blocks that
  differs from their answer is a second answer ("several-answers").
Why: a training reward that picks the convenient one of several answers pays for hedging.

`lenient` (for evaluating free-form outputs, e.g. instruct models without tags): the last
`<answer>` block (nested tags resolved to the innermost, an unclosed last one read to the end,
empty ones skipped, stray tags dropped) or else the text after the reasoning is read by the
first rule that finds something: (1) boxes: the last group of boxes separated only by commas,
`and`, `or`, spaces or `$` is read together as one list (`\\boxed{1}, \\boxed{2}` → `1, 2`; equal
contents once); (2) a last line ending in "… = X" with a number and no variable in X (it is the
last phrase of all); (3) the last anchored phrase ("final answer", "the answer is", "Answer:",
"**Answer:**", "####", "Therefore/Thus/Hence … is") up to the end of its sentence or a "so",
"because", "since" …, where "<words> is X" gives X and "X is the solution" gives X, and one
math span in the chosen part gives its content (without a number or math, at most three
words count: "east", "(B)"); (4) inside an `<answer>` block, its whole text;
(5) the last math span (`$…$`, `$$…$$`, `\\(…\\)`, `\\[…\\]`); (6) the last number. Why:
evaluation measures what the model meant, in the conventions instruct models answer in
(Minerva's "Final Answer: The final answer is $x$. I hope it is correct.").

Both modes clean the result the same way (`clean_answer`): a leading "The answer is",
"Answer:", "Final answer:" is dropped, as are trailing `.`, `,`, `;`, `:`, `?` (not `!`: it
may be a factorial), one pair of enclosing `$…$`, `\\(…\\)`, `\\[…\\]` and an enclosing
box. Units and words after a value stay (`18 clips`, `$18`): the equivalence checker decides
what they mean.

Every scan is linear in the input (`str.find`, regexes without nested quantifiers, one stack
pass for braces, closers looked for once per kind), so 1 MB of hostile text is read in bounded
time. Not here: deciding equality (`rewards.math.reward`), units, natural-language numbers,
prefilled prompts (the text before a first `</think>` is reasoning either way, but a prefilled
completion that never writes `</think>` is read as answer text).
Selecting a mode: the `math` reward's option, e.g. `rlreason-eval model=hf … reward.math.weight=1
+reward.math.options.mode=lenient` (the `+` adds the key; an option needs a weight next to it).
"""

from __future__ import annotations

import re

from envs.tags import ANSWER_CLOSE, ANSWER_OPEN
from rewards.math.lenient import lenient
from rewards.math.spans import Span, after_reasoning, boxes, clean_answer, outside, squash

MODES = ("strict", "lenient")
DEFAULT_MODE = "strict"

_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SUBSCRIPT = re.compile(r"_\{[^{}]*\}|_\w")


def check_mode(mode: str) -> str:
    """`mode` if it is one of `MODES`, else ValueError naming them."""
    if mode not in MODES:
        raise ValueError(f"math answer extraction mode {mode!r} is unknown; choose from {MODES}")
    return mode


def graded_answer(completion: str, mode: str = DEFAULT_MODE) -> str | None:
    """The graded answer text of `completion` in `mode` ("strict" or "lenient"), or None."""
    return explain_answer(completion, mode)[0]


def explain_answer(completion: str, mode: str = DEFAULT_MODE) -> tuple[str | None, str]:
    """(answer or None, the rule that decided or the reason there is no answer)."""
    check_mode(mode)
    if not isinstance(completion, str):
        return None, "no-answer"
    answer, how = (_strict if mode == "strict" else lenient)(completion)
    if answer is not None:
        answer = clean_answer(answer)
    return (answer, how) if answer else (None, how if answer is None else "no-answer")


# -- strict -------------------------------------------------------------------------------------
def _strict_blocks(tail: str) -> tuple[list[Span] | None, str]:
    """The closed `<answer>` blocks as (start, end, content) in order, or (None, reason) for
    bad tags."""
    blocks, pos = [], 0
    while True:
        opened = tail.find(ANSWER_OPEN, pos)
        closed = tail.find(ANSWER_CLOSE, pos)
        if closed >= 0 and (opened < 0 or closed < opened):
            return None, "tags"
        if opened < 0:
            return blocks, ""
        end = tail.find(ANSWER_CLOSE, opened + len(ANSWER_OPEN))
        if end < 0:
            return None, "unclosed-answer"
        content = tail[opened + len(ANSWER_OPEN) : end]
        if ANSWER_OPEN in content:
            return None, "tags"
        pos = end + len(ANSWER_CLOSE)
        blocks.append((opened, pos, content))


def _strict_block(content: str) -> tuple[str | None, str]:
    spans, unbalanced = boxes(content)
    if unbalanced:
        return None, "unclosed-box"
    if not spans:
        return content, "answer"
    if len({squash(s[2]) for s in spans}) > 1:
        return None, "several-boxes"
    value = spans[-1][2]
    numbers = _PLAIN_NUMBER.findall(_SUBSCRIPT.sub(" ", outside(content, spans)))
    if any(n != squash(value) for n in numbers):
        return None, "mixed"
    return value, "boxed"


def _strict_answers(tail: str, blocks: list[Span]) -> tuple[str | None, str]:
    """The one answer the blocks give; a box outside them that differs is a second answer."""
    found = []
    for _, _, content in blocks:
        if not content.strip():
            continue
        answer, how = _strict_block(content)
        if answer is None:
            return None, how
        found.append((clean_answer(answer), how))
    if not found:
        return None, "no-answer"
    stray = [clean_answer(s[2]) for s in boxes(outside(tail, blocks))[0]]
    if len({squash(a) for a, _ in found} | {squash(a) for a in stray}) > 1:
        return None, "several-answers"
    return found[-1]


def _strict(completion: str) -> tuple[str | None, str]:
    tail, cut = after_reasoning(completion)
    if cut:
        return None, "think-after-answer" if tail.strip() else "unclosed-think"
    blocks, why = _strict_blocks(tail)
    if blocks is None:
        return None, why
    if blocks:
        return _strict_answers(tail, blocks)
    spans, unbalanced = boxes(tail)
    if unbalanced:
        return None, "unclosed-box"
    if not spans:
        return None, "no-answer"
    if len({squash(s[2]) for s in spans}) > 1:
        return None, "several-boxes"
    return spans[-1][2], "boxed"
