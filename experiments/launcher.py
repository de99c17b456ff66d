"""Run sweep jobs as parallel subprocesses, each pinned to one device: the engine of `rlreason-sweep`.

A job is one command line (`rlreason-train <overrides>`). `plan_slots` decides the places jobs run
in: `jobs` slots, on a GPU machine slot k pinned to GPU k mod n (`CUDA_VISIBLE_DEVICES=<id>`,
so the job sees one device, as `cuda:0`), on a CPU machine each slot one CPU thread
(`OMP_NUM_THREADS=1`, GPUs hidden, plus `train.threads=1` on the command line). `launch` keeps
every slot busy: a job takes a free slot, its stdout and stderr stream into its own log file, the
console gets one line when it starts and one when it ends, and a freed slot goes to the next job
(so two jobs never share a GPU while another stands idle). A failed job does not stop the others.
The returned `JobRecord`s hold each job's command, device, start and end times (epoch seconds),
exit code, log path and run directory (read from the job's last `run dir:` line).

Not here: expanding the sweep, composing configs (experiments/sweep.py), retrying failed jobs,
scheduling across machines, GPU memory checks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")
RUN_DIR = re.compile(r"run dir: (\S.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Slot:
    """A place a job runs: its device label, environment variables and extra overrides."""

    index: int
    device: str  # "cuda:<id>" (the id as the parent sees it) or "cpu"
    env: dict[str, str]
    overrides: tuple[str, ...] = ()


@dataclass
class JobRecord:
    """What happened to one job (written to `jobs.json`)."""

    index: int
    overrides: list[str]
    command: list[str]
    log: str
    device: str = ""
    env: dict[str, str] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None
    returncode: int | None = None
    run_dir: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def label(self) -> str:
        return " ".join(self.overrides) or "(no overrides)"


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus(count: int | None = None, env: dict[str, str] | None = None) -> list[str]:
    """The GPU ids jobs can be pinned to: `CUDA_VISIBLE_DEVICES`'s entries when it is set, else
    0..count-1 (`count` defaults to `torch.cuda.device_count()`)."""
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    if count is None:
        import torch

        count = torch.cuda.device_count()
    return [str(i) for i in range(count)]


def resolve_devices(devices: str, gpus: Sequence[str]) -> str:
    """`auto` -> `cuda` when there is a GPU, else `cpu`; `cuda` without a GPU is an error."""
    if devices not in DEVICES:
        raise ValueError(f"devices={devices!r}: choose one of {', '.join(DEVICES)}")
    if devices == "auto":
        return "cuda" if gpus else "cpu"
    if devices == "cuda" and not gpus:
        raise ValueError("devices=cuda: no GPU visible (CUDA_VISIBLE_DEVICES / torch)")
    return devices


def default_jobs(n_jobs: int, mode: str, gpus: Sequence[str], cores: int) -> int:
    """One job per GPU on `cuda`, one per core on `cpu`; never more than there are jobs."""
    return max(1, min(n_jobs, len(gpus) if mode == "cuda" else cores))


def plan_slots(
    jobs: int, mode: str, gpus: Sequence[str], cores: int, threads: int = 1
) -> list[Slot]:
    """`jobs` slots: on `cuda` slot k gets GPU `gpus[k % len(gpus)]` (round-robin) and an even
    share of the cores for its CPU threads; on `cpu` each gets `threads` threads and no GPU."""
    if mode == "cuda":
        share = str(max(1, cores // jobs))
        return [
            Slot(k, f"cuda:{g}", {"CUDA_VISIBLE_DEVICES": g, "OMP_NUM_THREADS": share})
            for k, g in ((k, gpus[k % len(gpus)]) for k in range(jobs))
        ]
    n = str(threads)
    env = {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    return [Slot(k, "cpu", dict(env), (f"train.threads={threads}",)) for k in range(jobs)]


def job_command(base: Sequence[str], overrides: Sequence[str], slot: Slot) -> list[str]:
    """`base + overrides`, plus the slot's overrides for keys the job does not set itself."""
    own = {o.lstrip("+~").split("=", 1)[0] for o in overrides}
    extra = [o for o in slot.overrides if o.split("=", 1)[0] not in own]
    return [*base, *overrides, *extra]


def find_run_dir(log: Path) -> str | None:
    """The run directory a job printed last (`... run dir: <path>`), if any."""
    try:
        found = RUN_DIR.findall(log.read_text(errors="replace"))
    except OSError:
        return None
    return found[-1] if found else None


def write_records(records: Sequence[JobRecord], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in records], indent=1) + "\n")


def _start(rec: JobRecord, slot: Slot, base: Sequence[str]) -> subprocess.Popen:
    """Start `rec`'s job in `slot`, its output streaming (unbuffered) into its log file."""
    rec.command, rec.device, rec.env = job_command(base, rec.overrides, slot), slot.device, slot.env
    env = {**os.environ, **slot.env, "PYTHONUNBUFFERED": "1"}
    with open(rec.log, "w") as out:  # the child holds its own handle on the file
        proc = subprocess.Popen(
            rec.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    rec.start = time.time()
    return proc


def launch(
    jobs: Sequence[Sequence[str]],
    slots: Sequence[Slot],
    base: Sequence[str],
    log_dir: Path,
    echo: Callable[[str], None] = print,
    poll_s: float = 0.1,
) -> list[JobRecord]:
    """Run every job (`base + overrides`) in the first free slot until all have ended.

    Logs go to `log_dir/job<k>.log`, records to `log_dir/jobs.json` (rewritten as jobs end).
    On Ctrl-C the running jobs are terminated and the interrupt propagates."""
    log_dir.mkdir(parents=True, exist_ok=True)
    width = len(str(len(jobs)))
    logs = [str(log_dir / f"job{k:0{width}d}.log") for k in range(len(jobs))]
    records = [JobRecord(k, list(o), [], log) for k, (o, log) in enumerate(zip(jobs, logs))]
    pending, free = list(records), list(slots)
    running: dict[int, tuple[subprocess.Popen, Slot, JobRecord]] = {}
    total = len(records)
    try:
        while pending or running:
            while pending and free:
                rec, slot = pending.pop(0), free.pop(0)
                proc = _start(rec, slot, base)
                running[proc.pid] = (proc, slot, rec)
                echo(f"[sweep] job {rec.index + 1}/{total} started on {slot.device}: {rec.label}")
            time.sleep(poll_s)
            for pid, (proc, slot, rec) in list(running.items()):
                if proc.poll() is None:
                    continue
                rec.end, rec.returncode = time.time(), proc.returncode
                rec.run_dir = find_run_dir(Path(rec.log))
                del running[pid]
                free.append(slot)
                status = "ok" if rec.ok else f"FAILED (exit {rec.returncode}, log {rec.log})"
                echo(
                    f"[sweep] job {rec.index + 1}/{total} {status} in {rec.end - rec.start:.1f}s "
                    f"on {slot.device}: {rec.label}"
                )
                write_records(records, log_dir / "jobs.json")
    except KeyboardInterrupt:
        for proc, _, _ in running.values():
            proc.terminate()
        for proc, _, _ in running.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        write_records(records, log_dir / "jobs.json")
        raise
    write_records(records, log_dir / "jobs.json")
    return records


def failure_report(records: Sequence[JobRecord]) -> str:
    """A summary naming each failed job and its log ("" when every job succeeded)."""
    failed = [r for r in records if not r.ok]
    if not failed:
        return ""
    lines = [f"[sweep] {len(failed)} of {len(records)} jobs failed:"]
    lines += [f"  job {r.index + 1}: {r.label} (exit {r.returncode}), log: {r.log}" for r in failed]
    return "\n".join(lines)


def python_module(module: str) -> list[str]:
    """The command that runs `module` with this interpreter (the venv's, whatever is on PATH)."""
    return [sys.executable, "-m", module]
