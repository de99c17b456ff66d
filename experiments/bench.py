"""`rlreason-bench <name> [args]`: one entry point for the benchmark scripts (they print numbers).

Names: engine, math, sandbox, rewards, hf, step, sampler. Each maps to `experiments.bench_<name>.main`.
"""
from __future__ import annotations

import importlib
import sys

BENCHES = {"engine": "experiments.bench_engine", "math": "experiments.bench_math",
           "sandbox": "experiments.bench_sandbox", "rewards": "experiments.bench_rewards",
           "hf": "experiments.bench_hf", "step": "experiments.bench_step",
           "sampler": "experiments.bench_sampler"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BENCHES:
        sys.exit(f"usage: rlreason-bench {{{','.join(BENCHES)}}} [args]")
    importlib.import_module(BENCHES[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    main()
