"""Step time on an idle CPU vs. with a CPU-bound neighbour, for fixed and automatic threads.

Run: `rlreason-bench contention [--rounds 3 --steps 4 --threads all auto 1]` (step-bench
arguments after `--`, e.g. `-- --prompts 8`). Each round runs `rlreason-bench step` in a fresh
process once per thread setting idle, then again while this script keeps one burner process
(`while True: pass`) running; settings alternate within a round so drifts in background load
hit all of them. Prints, per setting, the median step time idle and busy and their ratio.
`all` is torch's default (every core, fixed); `auto` is `train.threads=null` (rlreason.threads).
Not here: GPU runs (the policy is CPU-only), more than one burner.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

STEP = re.compile(r"^\s+step\s+([0-9.]+) s", re.M)
ENDED = re.compile(r"ended on (\d+)")


def step_seconds(threads: str, steps: int, extra: list[str]) -> tuple[float, str]:
    """Median step time of a fresh `rlreason-bench step` process and the threads it ended on."""
    n = str(os.cpu_count() or 1) if threads == "all" else threads
    cmd = [sys.executable, "-m", "experiments.bench.step", "--steps", str(steps), "--threads", n]
    out = subprocess.run(cmd + extra, capture_output=True, text=True, check=True).stdout
    return float(STEP.search(out).group(1)), ENDED.search(out).group(1)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    ap = argparse.ArgumentParser(prog="rlreason-bench contention")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", nargs="+", default=["all", "auto"])
    a = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    times = {(t, busy): [] for t in a.threads for busy in (False, True)}
    for r in range(a.rounds):
        for busy in (False, True):
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                for t in a.threads:
                    seconds, ended = step_seconds(t, a.steps, extra)
                    times[t, busy].append(seconds)
                    print(
                        f"round {r + 1} {'busy' if busy else 'idle'} threads={t}: "
                        f"{seconds:.3f} s/step (ended on {ended} threads)",
                        flush=True,
                    )
            finally:
                if burner is not None:
                    burner.kill()
                    burner.wait()
    print(f"{os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{'threads':>8s} {'idle s':>8s} {'busy s':>8s} {'busy/idle':>9s}  (medians; min-max)")
    for t in a.threads:
        idle, busy = times[t, False], times[t, True]
        mi, mb = statistics.median(idle), statistics.median(busy)
        print(
            f"{t:>8s} {mi:8.3f} {mb:8.3f} {mb / mi:9.2f}  "
            f"idle {min(idle):.2f}-{max(idle):.2f}, busy {min(busy):.2f}-{max(busy):.2f}"
        )


if __name__ == "__main__":
    main()
