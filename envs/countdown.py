"""`countdown` (TinyZero's task): reach a target with the given numbers and + - * / ( ).

Generation builds a random expression tree over all the drawn numbers and takes its exact value
as the target, so every instance is solvable by construction (`meta["solution"]` keeps one
witness). The difficulty knob is `n_numbers`; `meta` holds `numbers`, `target`, `use_all`,
`difficulty` and `solution`; `Task.answer` is the target as text.

The verifier `check` never calls `eval`: it bounds the input size, parses with `ast`, walks a
whitelist of nodes (binary + - * /, non-negative int literals, nothing else; no unary minus, no
`**`, no names or calls), computes with `fractions.Fraction` (so 7/2*2 == 7 exactly), and checks
the literals used are a sub-multiset of the given numbers (the whole multiset with `use_all`).
Only the characters 0-9 + - * / ( ) and whitespace may appear (so no `0x19` or `2_5` spelling
of a given number); the Unicode signs − × ÷ are accepted as - * /, and one trailing
`= <target>` is ignored.

`countdown_reward` scores the expression `envs.tags.final_answer` reads (the last
<answer>…</answer> after the reasoning; think text never counts). This module does not check
the completion's format; the `format` reward does.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from envs.base import EnvSpec, Task, TaskSet, sample_unique_splits
from envs.tags import final_answer

MAX_EXPRESSION_CHARS = 256
MAX_NODES = 64
BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
UNICODE_SIGNS = str.maketrans({"−": "-", "×": "*", "÷": "/"})
ALLOWED_CHARS = re.compile(r"[0-9+\-*/()\s]*")  # plain decimal literals only: no 0x19, 2_5
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class _Rejected(Exception):
    """The expression is not a whitelisted countdown expression."""


def _value(node: ast.AST, used: list[int]) -> Fraction:
    """Exact value of a whitelisted node; appends every literal to `used`."""
    if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
        left, right = _value(node.left, used), _value(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _Rejected("division by zero")
        return BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        used.append(node.value)
        return Fraction(node.value)
    raise _Rejected(f"node {type(node).__name__} is not allowed")


def _strip_target(expression: str, target: int) -> str | None:
    """Drop one trailing `= target`; None when an `=` is present with anything else after it."""
    if "=" not in expression:
        return expression
    lhs, _, rhs = expression.partition("=")
    return lhs if rhs.strip() == str(target) else None


def check(expression: str, numbers: list[int], target: int, use_all: bool = False) -> bool:
    """True iff `expression` uses only `numbers` (each at most once; exactly once with
    `use_all`) with + - * / and parentheses, and equals `target` exactly."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        return False
    body = _strip_target(expression.translate(UNICODE_SIGNS), target)
    if body is None or not body.strip() or not ALLOWED_CHARS.fullmatch(body):
        return False
    try:
        tree = ast.parse(body.strip(), mode="eval")
        if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
            return False
        used: list[int] = []
        value = _value(tree.body, used)
    except (_Rejected, SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    have, need = Counter(numbers), Counter(used)
    if need - have or (use_all and need != have):
        return False
    return value == target


# --------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class CountdownConfig:
    n_numbers: int = 4
    min_number: int = 1
    max_number: int = 99
    max_target: int = 999
    use_all: bool = False
    n_train: int = 10_000
    n_eval: int = 500
    seed: int = 0
    template: str = "r1_zero"

    def __post_init__(self) -> None:
        if not 2 <= self.n_numbers <= 8:
            raise ValueError(f"countdown: n_numbers must be in 2..8, got {self.n_numbers}")
        if not 1 <= self.min_number <= self.max_number:
            raise ValueError(
                f"countdown: need 1 <= min_number <= max_number, got "
                f"{self.min_number}, {self.max_number}"
            )
        if self.max_target < 1:
            raise ValueError(f"countdown: max_target must be >= 1, got {self.max_target}")


def _random_tree(rng: random.Random, numbers: list[int]) -> tuple[str, Fraction]:
    """Combine `numbers` pairwise in random order with random ops: (text, exact value).

    Intermediate values stay non-negative integers (a non-exact division becomes an addition,
    a negative difference swaps its operands), so the witness reads like a human solution."""
    items = [(str(n), Fraction(n)) for n in numbers]
    while len(items) > 1:
        (lt, lv) = items.pop(rng.randrange(len(items)))
        (rt, rv) = items.pop(rng.randrange(len(items)))
        op = rng.choice(list(BINOPS))
        if op is ast.Sub and rv > lv:
            (lt, lv), (rt, rv) = (rt, rv), (lt, lv)
        if op is ast.Div and (rv == 0 or lv % rv):
            op = ast.Add
        items.append((f"({lt} {SYMBOL[op]} {rt})", BINOPS[op](lv, rv)))
    text, value = items[0]
    return (text[1:-1] if text.startswith("(") else text), value


def sample_task(cfg: CountdownConfig, rng: random.Random) -> Task:
    """One solvable instance; redraws until the target is an integer in 1..max_target."""
    for _ in range(10_000):
        numbers = [rng.randint(cfg.min_number, cfg.max_number) for _ in range(cfg.n_numbers)]
        solution, value = _random_tree(rng, numbers)
        if value.denominator == 1 and 1 <= value <= cfg.max_target and value not in numbers:
            return make_task(numbers, int(value), cfg.use_all, solution)
    raise ValueError(f"countdown: no valid target found for {cfg}; widen max_target")


def make_task(numbers: list[int], target: int, use_all: bool, solution: str | None = None) -> Task:
    rule = "each number exactly once" if use_all else "each number at most once"
    prompt = (
        f"Using the numbers {numbers}, write an equation that equals {target}. "
        f"Use + - * / and parentheses, {rule}. "
        "Give the final equation in <answer> </answer> tags, e.g. <answer> (1 + 2) / 3 "
        "</answer>."
    )
    meta = {
        "numbers": list(numbers),
        "target": target,
        "use_all": use_all,
        "difficulty": len(numbers),
        "solution": solution,
    }
    return Task(prompt=prompt, answer=str(target), meta=meta)


def build(cfg: CountdownConfig) -> TaskSet:
    train, eval_ = sample_unique_splits(
        lambda rng: sample_task(cfg, rng), cfg.n_train, cfg.n_eval, cfg.seed, "countdown"
    )
    return TaskSet(
        "countdown",
        train,
        eval_,
        {"countdown": 1.0, "format": 0.1},
        cfg.template,
        cfg,
        accuracy="countdown",
        vote=("envs.tags:final_answer", "envs.countdown:answer_key"),
    )


ENV = EnvSpec(
    config=CountdownConfig, build=build, rewards={"countdown": "envs.countdown:countdown_reward"}
)


# --------------------------------------------------------------------------- reward


def answer_key(answer: str | None) -> str | None:
    """Voting key of a countdown answer: the expression without spaces."""
    return answer.replace(" ", "") if answer else None


def countdown_reward(completions: list[str], tasks: list[Task]) -> list[float]:
    """1.0 where the final answer is a valid expression reaching the task's target, else 0.0."""
    if len(completions) != len(tasks):
        raise ValueError(f"countdown_reward: {len(completions)} completions for {len(tasks)} tasks")
    scores = []
    for text, task in zip(completions, tasks):
        expr = final_answer(text)
        ok = expr is not None and check(
            expr, task.meta["numbers"], int(task.answer), bool(task.meta.get("use_all", False))
        )
        scores.append(1.0 if ok else 0.0)
    return scores
