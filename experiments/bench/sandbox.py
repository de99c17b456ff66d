"""Benchmark of the code sandbox: isolated executions per second and per-layer cost.

`python -m experiments.bench.sandbox [--n 200] [--workers 2 4]` prints, for a trivial program
(`print(1)`), the serial wall cost per run of each layer added on top of a bare interpreter
start, then the parallel throughput of `execute_many` and of `run_tests_many`. The target
is 50 isolated executions/s on 2 cores. Timings are wall clock on whatever else the machine is
doing; the printout states the core count and load average so numbers can be compared.

It measures; it asserts nothing and is not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from rewards.code import run_tests_many
from rewards.code.sandbox import BACKENDS, CHILD, Limits, detect_backend, execute_many, run_program

TRIVIAL = "print(1)"


def bare_interpreter(n: int) -> tuple[float, float]:
    """Component: a fresh `python -I -S -c pass` via subprocess, no isolation (CPython start-up).
    Source: the floor every process-per-run sandbox pays."""
    return _timed(
        n, lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], env={}, check=True)
    )


def namespaces_only(n: int) -> tuple[float, float]:
    """Component: the same interpreter inside `unshare --mount --net --pid --fork --mount-proc`
    (util-linux): namespace creation and teardown. Source: Linux namespaces(7)."""
    return _timed(
        n,
        lambda: subprocess.run(
            [*BACKENDS["unshare"].prefix, sys.executable, "-I", "-S", "-c", "pass"],
            env={},
            check=True,
        ),
    )


def harness_rlimits_backend(n: int) -> tuple[float, float]:
    """Component: `run_program` on the degraded "rlimits" backend: job file, harness
    (`rewards/code/sandbox_child.py`: uid drop, rlimits, program run), pipes, uid kill sweep.
    Source: this repo, `rewards.code.sandbox`."""
    return _timed(
        n, lambda: run_program(TRIVIAL, limits=Limits(timeout_s=5), backend=BACKENDS["rlimits"])
    )


def full_execute(n: int) -> tuple[float, float]:
    """Component: `run_program` on the detected backend (namespaces, read-only remounts, tmpfs
    working dir, uid drop, rlimits, capped pipes). Source: this repo, `rewards.code.sandbox`."""
    return _timed(n, lambda: run_program(TRIVIAL, limits=Limits(timeout_s=5)))


def _cpu_s() -> float:
    """CPU seconds of this process (all threads) plus its reaped children."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _timed(n: int, fn) -> tuple[float, float]:
    """-> (wall seconds, CPU seconds) per call, averaged over `n` calls after one warm-up."""
    fn()  # warm caches and backend detection
    wall, cpu = time.perf_counter(), _cpu_s()
    for _ in range(n):
        fn()
    return (time.perf_counter() - wall) / n, (_cpu_s() - cpu) / n


def throughput(n: int, workers: int) -> float:
    """Isolated executions/s of `execute_many` for `n` trivial programs on `workers` threads."""
    start = time.perf_counter()
    results = execute_many([TRIVIAL] * n, timeout_s=5, memory_mb=256, max_workers=workers)
    elapsed = time.perf_counter() - start
    bad = [
        (r.status, r.stdout[:80], r.stderr[-300:])
        for r in results
        if r.status != "ok" or r.stdout != "1\n"
    ]
    if bad:
        raise RuntimeError(f"bench_sandbox: {len(bad)} runs failed: {bad[:5]}")
    return n / elapsed


def tests_throughput(n: int, workers: int) -> float:
    """Programs/s scored by `run_tests_many`, each with 2 stdin tests + 2 call tests (3 runs)."""
    program = (
        "import sys\ndef add(a, b):\n    return a + b\ndata = sys.stdin.read().split()\n"
        "if data:\n    print(add(*map(int, data)))"
    )
    tests = [
        {"stdin": "1 2", "stdout": "3"},
        {"stdin": "2 2", "stdout": "4"},
        {"call": "add(1, 2)", "expected": "3"},
        {"call": "add(0, 0)", "expected": "0"},
    ]
    start = time.perf_counter()
    reports = run_tests_many(
        [program] * n, [tests] * n, max_workers=workers, timeout_s=5, memory_mb=256
    )
    elapsed = time.perf_counter() - start
    if any(r.passed != 4 for r in reports):
        raise RuntimeError("bench_sandbox: a correct program failed its tests")
    return n / elapsed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="runs per throughput measurement")
    ap.add_argument("--serial-n", type=int, default=30, help="runs per serial component")
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    args = ap.parse_args(argv)
    backend = detect_backend()
    print(
        f"backend={backend.name} cores={os.cpu_count()} load={os.getloadavg()[0]:.2f} "
        f"python={sys.version.split()[0]} harness={os.path.basename(CHILD)}"
    )
    components = [bare_interpreter, harness_rlimits_backend, full_execute]
    if backend.name == "unshare":
        components.insert(1, namespaces_only)
    print("per-sample serial cost, wall ms/run and CPU ms/run (parent + children):")
    for fn in components:
        wall, cpu = fn(args.serial_n)
        print(
            f"  {fn.__name__:<24} wall {1000 * wall:6.1f}  cpu {1000 * cpu:6.1f}   "
            f"{fn.__doc__.splitlines()[0]}"
        )
        if fn is full_execute:
            print(
                f"  => CPU-bound ceiling on {os.cpu_count()} idle cores: "
                f"{os.cpu_count() / cpu:.0f} isolated executions/s"
            )
    for workers in args.workers:
        rate = throughput(args.n, workers)
        print(
            f"execute_many     workers={workers}: {rate:6.1f} isolated executions/s "
            f"({1000 / rate:.1f} ms/run; floor 50/s)"
        )
    for workers in args.workers:
        rate = tests_throughput(max(20, args.n // 4), workers)
        print(
            f"run_tests_many   workers={workers}: {rate:6.1f} programs/s "
            f"(4 tests = 3 sandbox runs each)"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
