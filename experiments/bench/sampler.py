"""Benchmark: the engine's per-step sampling pieces at real vocabulary sizes (CPU).

For a (rows, V) batch of float32 logits it times, per call:
- `torch.multinomial` on the softmax (what transformers' sampling uses: one exponential variate
  per vocabulary entry) against `rlreason.sampling.engine.draw` (inverse CDF: one uniform per row, float64
  cumulative sum);
- the engine's whole `sample_next` at temperature 1 with and without top-k 50 (softmax or top-k,
  log-normaliser, draw, log-prob of the drawn token).

Run: `rlreason-bench sampler [--rows 32 --vocab 100 50257 151936 --repeats 20 --threads 2]`.
Asserts nothing; the draws' correctness is tested in tests/test_engine.py.
"""

from __future__ import annotations

import argparse
import time

import torch


def per_call_ms(fn, repeats: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats * 1e3


def main(argv=None) -> list[dict]:
    from rlreason.sampling.draw import draw, sample_next

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--vocab", type=int, nargs="+", default=[100, 50257, 151936])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    print(f"per-call ms, {args.rows} rows, {args.threads} threads")
    print(
        f"{'vocab':>8} {'multinomial':>12} {'draw':>8} {'speed-up':>9} {'sample_next':>12} "
        f"{'+top-k 50':>10}"
    )
    for V in args.vocab:
        logits = torch.randn(args.rows, V, generator=gen)
        probs = torch.softmax(logits, -1)
        u = lambda: torch.rand(args.rows, 1, generator=gen)
        r = {
            "vocab": V,
            "multinomial_ms": per_call_ms(
                lambda: torch.multinomial(probs, 1, generator=gen), args.repeats
            ),
            "draw_ms": per_call_ms(lambda: draw(probs, u()), args.repeats),
            "sample_next_ms": per_call_ms(
                lambda: sample_next(logits, 1.0, None, None, u()), args.repeats
            ),
            "sample_next_top_k_ms": per_call_ms(
                lambda: sample_next(logits, 1.0, 50, None, u()), args.repeats
            ),
        }
        rows.append(r)
        print(
            f"{V:>8} {r['multinomial_ms']:>12.2f} {r['draw_ms']:>8.2f} "
            f"{r['multinomial_ms'] / r['draw_ms']:>8.1f}x {r['sample_next_ms']:>12.2f} "
            f"{r['sample_next_top_k_ms']:>10.2f}"
        )
    return rows


if __name__ == "__main__":
    main()
