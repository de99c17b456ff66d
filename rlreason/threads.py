"""CPU thread policy: use the cores other processes leave free, re-checked while running.

OpenMP threads that outnumber the free cores straggle: every parallel region waits for the
thread that was descheduled, so one CPU-bound neighbour on a 2-core machine can make 2 threads
several times slower than 1. `choose_threads` is the pure decision (cores, CPU busy with other
processes → threads); `others_busy` reads it from /proc/stat minus this process's own CPU time;
`AdaptiveThreads` re-decides every `interval_s` seconds and calls `torch.set_num_threads`.

`install()` hooks the check onto every module forward of the main thread (the thread whose
OpenMP setting matters; a background thread's `set_num_threads` would not reach it).
Not here: GPU placement, per-op thread tuning, OMP environment variables.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field


def choose_threads(
    cores: int, others_busy: float, current: int | None = None, ceiling: int | None = None
) -> int:
    """Threads for `cores` cores when other processes keep `others_busy` cores busy (0..cores),
    at most `ceiling` (default: `cores`).

    Without `current`: the free cores rounded to the nearest whole core, at least 1. With it,
    a thread is dropped once others take 0.4 of a core from it (a neighbour sharing our cores
    shows up as ~2/3 of one) and added only when 0.75 of a core is free (no flapping)."""
    free = max(0.0, cores - max(0.0, others_busy))

    def clamp(n: int) -> int:
        return max(1, min(ceiling or cores, n))

    if current is None:
        return clamp(int(free + 0.5))
    up, down = clamp(int(free + 0.25)), clamp(int(free + 0.6))
    return up if up > current else down if down < current else current


def read_proc_stat(path: str = "/proc/stat") -> tuple[float, float] | None:
    """(busy, total) CPU seconds summed over all cores since boot, or None where unreadable."""
    try:
        with open(path) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [float(x) for x in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = sum(ticks[:8])  # guest time is already inside user
    return (total - idle) / hz, total / hz


def own_cpu_seconds() -> float:
    """CPU seconds used by this process (all its threads)."""
    t = os.times()
    return t.user + t.system


@dataclass
class Sample:
    busy: float  # machine busy CPU seconds
    total: float  # machine CPU seconds
    own: float  # this process's CPU seconds


def others_busy(a: Sample, b: Sample, cores: int) -> float:
    """Cores kept busy by OTHER processes between samples a and b (0..cores)."""
    elapsed = b.total - a.total  # CPU seconds of all cores
    if elapsed <= 0:
        return 0.0
    other = (b.busy - a.busy) - (b.own - a.own)
    return min(float(cores), max(0.0, other / elapsed * cores))


def take_sample() -> Sample | None:
    stat = read_proc_stat()
    return None if stat is None else Sample(stat[0], stat[1], own_cpu_seconds())


@dataclass
class AdaptiveThreads:
    """Re-decides the thread count from the load measured since the previous check."""

    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    ceiling: int | None = None  # most threads ever used (default: cores)
    interval_s: float = 2.0
    threads: int = 0
    _last: Sample | None = None
    _next_check: float = 0.0

    def start(self, probe_s: float = 0.2) -> int:
        """Initial decision from a short probe (this process is idle during it)."""
        a = take_sample()
        time.sleep(probe_s if a is not None else 0.0)
        b = take_sample()
        busy = others_busy(a, b, self.cores) if a is not None and b is not None else 0.0
        self._apply(choose_threads(self.cores, busy, ceiling=self.ceiling))
        self._last, self._next_check = b, time.monotonic() + self.interval_s
        return self.threads

    def check(self) -> int:
        """Cheap unless `interval_s` has passed; then re-measure and maybe change threads."""
        now = time.monotonic()
        if now < self._next_check:
            return self.threads
        self._next_check = now + self.interval_s
        b = take_sample()
        if b is not None and self._last is not None:
            busy = others_busy(self._last, b, self.cores)
            self._apply(choose_threads(self.cores, busy, self.threads, self.ceiling))
        self._last = b
        return self.threads

    def _apply(self, n: int) -> None:
        import torch

        if n != self.threads:
            torch.set_num_threads(n)
            self.threads = n


_INSTALLED: AdaptiveThreads | None = None


def install(interval_s: float = 2.0) -> AdaptiveThreads | None:
    """Start an `AdaptiveThreads` and re-check it before module forwards of this thread (once
    per process: a second call re-probes the running policy). The ceiling is torch's thread
    count at the first call: its default (physical cores), or what OMP_NUM_THREADS or an earlier
    `torch.set_num_threads` chose; a ceiling of 1 leaves everything as it is (returns None)."""
    import threading

    import torch

    global _INSTALLED
    if _INSTALLED is not None:
        _INSTALLED.start()
        return _INSTALLED
    ceiling = torch.get_num_threads()
    if ceiling <= 1:
        return None
    policy = _INSTALLED = AdaptiveThreads(ceiling=ceiling, interval_s=interval_s)
    policy.start()
    main = threading.get_ident()

    def hook(module, args):
        if threading.get_ident() == main:
            policy.check()

    torch.nn.modules.module.register_module_forward_pre_hook(hook)
    return policy
