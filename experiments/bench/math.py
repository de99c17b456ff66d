"""Benchmark of the math answer checker: throughput on a realistic mix, per-component cost,
and worst-case latency on hostile inputs. Run `python -m experiments.bench.math [--n 4000]`.

The mix (deterministic, seed 0) imitates GRPO rollouts on GSM8K/MATH-style tasks: whole
completions `<think>…</think><answer>…</answer>` (half with `\\boxed{}`), ~55% integer answers,
~20% fractions/decimals, ~8% tuples/intervals/sets, ~17% symbolic (radicals, π, polynomials);
about half of the predictions are right. Pairs are unique, so the memo does not help the first
pass; a second pass over the same pairs shows the memoised rate separately.
It deliberately measures only this checker, with the pool's default `POOL_WORKERS` processes.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from rewards import math as checker
from rewards.math.compare import EXACT, trees_equivalent
from rewards.math.exact import guard
from rewards.math.normalize import extract_answer, normalize
from rewards.math.numeric import clearly_different
from rewards.math.parse import parse_answer
from rewards.math.reward import POOL_WORKERS


def _integer(rng):
    g = rng.randint(-50, 5000)
    return str(g), str(g if rng.random() < 0.5 else g + rng.randint(1, 9))


def _fraction(rng):
    p, q = rng.randint(1, 99), rng.randint(2, 60)
    right = rng.random() < 0.5
    pred = rng.choice([f"{p}/{q}", f"\\frac{{{p * 2}}}{{{q * 2}}}", f"{p / q:.4f}"])
    return f"\\frac{{{p}}}{{{q}}}", pred if right else f"{p + 1}/{q}"


def _structure(rng):
    a, b = sorted(rng.sample(range(-30, 30), 2))
    gold = rng.choice([f"({a}, {b}]", f"\\{{{a}, {b}\\}}", f"({a}, {b})"])
    return gold, gold.replace(" ", "") if rng.random() < 0.5 else gold.replace(str(b), str(b + 1))


def _symbolic(rng):
    k = rng.randint(2, 30)
    m = rng.randint(2, 9)
    gold, right, wrong = rng.choice(
        [
            (f"{k}\\sqrt{{2}}", f"\\sqrt{{{2 * k * k}}}", f"\\sqrt{{{2 * k * k + 1}}}"),
            (f"{k}\\pi", f"\\pi {k}", f"{k + 1}\\pi"),
            (f"x^2+{2 * k}x+{k * k}", f"(x+{k})^2", f"(x+{k})^2+1"),
            (
                f"\\frac{{{k}}}{{\\sqrt{{{m}}}}}",
                f"\\frac{{{k}\\sqrt{{{m}}}}}{{{m}}}",
                f"{k}\\sqrt{{{m}}}",
            ),
        ]
    )
    return gold, right if rng.random() < 0.5 else wrong


KINDS = [(_integer, 0.55), (_fraction, 0.20), (_structure, 0.08), (_symbolic, 0.17)]


def make_mix(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` unique (completion, gold) pairs of the realistic mix (module docstring)."""
    rng, pairs, seen = random.Random(seed), [], set()
    while len(pairs) < n:
        make = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
        gold, pred = make(rng)
        body = f"\\boxed{{{pred}}}" if rng.random() < 0.5 else pred
        think = f"<think>Let me compute step by step, {rng.random():.6f}.</think>"
        completion = f"{think}<answer>{body}</answer>"
        if (completion, gold) not in seen:
            seen.add((completion, gold))
            pairs.append((completion, gold))
    return pairs


HOSTILE = [
    "9^{9^{9^{9}}}",
    "2^{2^{2^{2^{2^{2}}}}}",
    "(10^{100})!",
    "x^{10^{9}}",
    "(x+y+z)^{1000}",
    "(" * 60 + "1" + ")" * 60,
    "1" + "+1" * 5000,
    "\\frac{" * 300 + "1" + "}{2}" * 300,
    "1e999999",
    "__import__('os').system('true')",
    "(x+y+z+w)^{100}-(w+z+y+x)^{99}(x+y+z+w)",
    "\\sin(\\sin(\\sin(\\sin(\\sin(\\sin(x))))))^{99}",
    "\\binom{1000}{500}x^{99}y^{99}",
    "x" * 5000,
    "<answer>" * 2000,
    "<think>" * 20000,
    "\\boxed{" * 20000,
    "<think>a</think>" * 20000 + "<answer>4</answer>",
]


def _per_sample_us(fn, items, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for item in items:
            fn(item)
    return (time.perf_counter() - start) / (len(items) * repeat) * 1e6


def component_costs(pairs) -> dict[str, float]:
    """Microseconds per sample for each stage of the pipeline, on the mix's predictions."""
    answers = [extract_answer(c) or "0" for c, _ in pairs]
    norms = [normalize(a) for a in answers]
    trees = [parse_answer(n) for n in norms]
    gold_trees = [parse_answer(normalize(g)) for _, g in pairs]

    def exact(pair):
        try:
            trees_equivalent(*pair, EXACT)
        except Exception:
            pass

    symbolic = [(normalize(g), n) for (c, g), n in zip(pairs, norms) if "\\sqrt" in g or "x" in g]
    symbolic_trees = [(parse_answer(g), parse_answer(p)) for g, p in symbolic]
    from rewards.math.symbolic import check_symbolic  # imports sympy here only, for timing

    fresh = [(f"\\sqrt{{{2 * k * k}}}+{k}y", f"{k}\\sqrt{{2}}+{k}y") for k in range(1000, 1400)]
    start = time.perf_counter()
    checker.check_many(fresh)
    pool_us = (time.perf_counter() - start) / len(fresh) * 1e6
    return {
        "extract_answer": _per_sample_us(extract_answer, [c for c, _ in pairs]),
        "normalize": _per_sample_us(normalize, answers),
        "parse_answer": _per_sample_us(parse_answer, norms),
        "guard": _per_sample_us(guard, trees),
        "exact compare": _per_sample_us(exact, list(zip(gold_trees, trees))),
        "numeric pre-filter (symbolic pairs)": _per_sample_us(
            lambda p: clearly_different(*p), symbolic_trees
        ),
        "sympy check, in-process (symbolic pairs)": _per_sample_us(
            lambda p: check_symbolic(*p), symbolic[:200]
        ),
        "symbolic pair through the pool, amortised": pool_us,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    args = parser.parse_args(argv)
    pairs = make_mix(args.n)
    print(f"cpus={os.cpu_count()} workers={POOL_WORKERS} load={os.getloadavg()[0]:.1f}")
    start = time.perf_counter()
    checker.start_pool()
    checker.check_many([("\\sqrt{2}", "\\sqrt{2}+0x")])
    print(f"pool cold start (incl. first check): {time.perf_counter() - start:.2f} s")

    start = time.perf_counter()
    verdicts = checker.check_many_verdicts(pairs)
    elapsed = time.perf_counter() - start
    methods = {}
    for v in verdicts:
        methods[v.method] = methods.get(v.method, 0) + 1
    print(
        f"mix, unique pairs: {len(pairs)} checks in {elapsed:.2f} s = "
        f"{len(pairs) / elapsed:,.0f} checks/s; decided by {methods}"
    )
    start = time.perf_counter()
    checker.check_many(pairs)
    elapsed = time.perf_counter() - start
    print(f"mix, second pass (memoised): {len(pairs) / elapsed:,.0f} checks/s")

    for name, us in component_costs(pairs).items():
        print(f"  {name:<42s} {us:9.1f} us/sample")

    worst = 0.0
    for text in HOSTILE:
        start = time.perf_counter()
        verdict = checker.check_many_verdicts([(text, "1")])[0]
        took = time.perf_counter() - start
        worst = max(worst, took)
        print(f"  hostile {text[:40]!r:<44s} {took * 1e3:8.1f} ms  {verdict.method}")
    start = time.perf_counter()
    verdict = checker.check_many_verdicts([("\\sqrt{99}+w", "3\\sqrt{11}+w")], timeout_s=0.0)[0]
    print(
        f"  forced overrun (timeout 0 s, worker killed): "
        f"{(time.perf_counter() - start) * 1e3:.1f} ms -> {verdict.method}"
    )
    start = time.perf_counter()
    verdict = checker.check_many_verdicts([("\\sqrt{98}+w", "7\\sqrt{2}+w")])[0]
    print(
        f"  next symbolic check, replacement worker still starting: "
        f"{(time.perf_counter() - start) * 1e3:.1f} ms -> {verdict.method}"
    )
    print(f"worst single hostile check: {worst:.3f} s (limit 3 s)")
    checker.close_pool()


if __name__ == "__main__":
    main()
