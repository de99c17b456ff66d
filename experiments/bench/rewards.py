"""Per-sample cost of every reward component, printed as a table.

Run: `python -m experiments.bench.rewards [--batch 64] [--repeats 5]`.

Times each registry reward on a synthetic batch of realistic completions (about 2 000 characters
of English / Chinese / Russian reasoning, some malformed), the composition overhead, and the
worst case of the text rewards on a 1 MB hostile completion. `math` and `code` are timed too when
their modules import (first call reported separately: it starts worker processes). Numbers are
wall-clock medians over repeats on whatever machine runs it; this script asserts nothing.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

from envs.base import Task
from rewards.base import ComposedReward
from rewards.registry import build_reward

REASONING = {
    "en": "First we add the two numbers, then we check the result carefully. ",
    "zh": "我们先把两个数相加，然后仔细检查结果是否正确。",
    "ru": "Сначала сложим два числа, затем внимательно проверим результат. ",
}


def synthetic_batch(batch: int, chars: int = 2000) -> tuple[list[str], list[Task]]:
    """`batch` completions of about `chars` characters; every 4th one is malformed."""
    completions, tasks = [], []
    langs = list(REASONING)
    for i in range(batch):
        lang = langs[i % len(langs)]
        body = (REASONING[lang] + " $x^2 + 1 = 5$ ") * max(1, chars // (len(REASONING[lang]) + 15))
        answer = str(i % 10)
        text = f"<think>{body}</think>\n<answer>{answer}</answer>"
        completions.append(text if i % 4 else text + " trailing text")
        tasks.append(Task(prompt=f"What is {i % 10} + 0?", answer=answer, meta={"lang": lang}))
    return completions, tasks


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def constant_judge(completions: list[str], tasks: list[Task]) -> list[float]:
    return [1.0 if i % 2 else 0.0 for i in range(len(completions))]


TEXT_REWARDS: dict[str, dict] = {
    "format": {},
    "format_soft": {},
    "tag_count": {},
    "language": {},
    "overlong": {"max_len": 4096, "cache_len": 1024},
    "cosine_length": {"max_len": 4096, "correctness": constant_judge},
}


def row(name: str, seconds: float, batch: int, note: str = "") -> None:
    print(f"{name:<28} {seconds / batch * 1e6:>12.1f} µs/sample   (batch {batch}) {note}")


def bench_text_rewards(completions, tasks, repeats: int) -> None:
    batch = len(completions)
    for name, options in TEXT_REWARDS.items():
        reward = build_reward(name, **options)
        row(name, median_seconds(lambda reward=reward: reward(completions, tasks), repeats), batch)
    composed = ComposedReward(
        {n: (build_reward(n, **o), 1.0) for n, o in TEXT_REWARDS.items()}, gate="format"
    )
    seconds = median_seconds(lambda: composed(completions, tasks), repeats)
    row("composed (all above, gated)", seconds, batch)


def bench_hostile(repeats: int) -> None:
    hostile = ["<think>" + ("</answer><think>\\[ $ x " * 50_000)[:1_000_000]]
    tasks = [Task("What is 1 + 1?", meta={"lang": "zh"})]
    for name in ("format", "format_soft", "tag_count", "language"):
        reward = build_reward(name)
        row(
            f"{name} @ 1 MB hostile",
            median_seconds(lambda reward=reward: reward(hostile, tasks), repeats),
            1,
        )


def bench_optional(
    name: str,
    make_batch: Callable[[int], tuple[list[str], list[Task]]],
    options: dict,
    repeats: int,
) -> None:
    """Time a reward if its module imports; report and skip otherwise. Every call
    gets a fresh batch (`make_batch(call_index)`) so answer caches cannot flatter the numbers."""
    try:
        reward = build_reward(name, **options)
    except (ImportError, ValueError) as exc:
        print(f"{name:<28} skipped: {exc}")
        return
    completions, tasks = make_batch(0)
    start = time.perf_counter()
    out = reward(completions, tasks)
    row(f"{name} (first call)", time.perf_counter() - start, len(completions))
    batches = iter([make_batch(k) for k in range(1, repeats + 1)])
    row(
        name,
        median_seconds(lambda: reward(*next(batches)), repeats),
        len(completions),
        f"mean score {sum(out) / len(out):.2f}",
    )


def code_batch(batch: int, call: int) -> tuple[list[str], list[Task]]:
    """Programs computing k * x, tested on two calls; distinct per call and sample."""
    completions, tasks = [], []
    for i in range(batch):
        k = call * batch + i + 2
        program = f"```python\ndef f(x):\n    return {k} * x\n```"
        tests = [{"call": "f(2)", "expected": str(2 * k)}, {"call": "f(5)", "expected": str(5 * k)}]
        completions.append(f"<think>multiply</think><answer>{program}</answer>")
        tasks.append(Task(f"Write f(x) = {k}x.", tests=tests, meta={"entry_point": "f"}))
    return completions, tasks


def math_batch(batch: int, call: int) -> tuple[list[str], list[Task]]:
    """Equal integers, fraction vs decimal, expanded vs factored polynomial, and a wrong answer
    in turn (expected mean score 0.75), all distinct per call and sample."""
    completions, tasks = [], []
    for i in range(batch):
        k = call * batch + i + 1
        pred, gold = [
            (f"{k}", f"{k}"),
            (f"\\frac{{{2 * k + 1}}}{{2}}", f"{k + 0.5}"),
            (f"x^2+{2 * k}x+{k * k}", f"(x+{k})^2"),
            (f"{k}", f"{k + 1}"),
        ][i % 4]
        completions.append(f"<think>work</think><answer>{pred}</answer>")
        tasks.append(Task("q", answer=gold))
    return completions, tasks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    completions, tasks = synthetic_batch(args.batch)
    mean_chars = sum(map(len, completions)) / len(completions)
    print(f"reward cost per sample, median of {args.repeats}; completions ~{mean_chars:.0f} chars")
    bench_text_rewards(completions, tasks, args.repeats)
    bench_hostile(max(1, args.repeats // 2))
    bench_optional("math", functools.partial(math_batch, args.batch), {}, args.repeats)
    bench_optional(
        "code", functools.partial(code_batch, min(args.batch, 8)), {}, max(1, args.repeats // 2)
    )


if __name__ == "__main__":
    main()
