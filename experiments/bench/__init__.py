"""`rlreason-bench <name> [args]`: one entry point for the benchmark scripts (they print numbers).

Names: engine, math, sandbox, rewards, hf, step, sampler, contention, gpu. Each maps to
`experiments.bench.<name>.main`.
"""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "engine": "experiments.bench.engine",
    "math": "experiments.bench.math",
    "sandbox": "experiments.bench.sandbox",
    "rewards": "experiments.bench.rewards",
    "hf": "experiments.bench.hf",
    "step": "experiments.bench.step",
    "sampler": "experiments.bench.sampler",
    "contention": "experiments.bench.contention",
    "gpu": "experiments.bench.gpu",
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BENCHES:
        sys.exit(f"usage: rlreason-bench {{{','.join(BENCHES)}}} [args]")
    importlib.import_module(BENCHES[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    main()
