"""Run one untrusted Python program in a fresh, isolated, resource-limited process.

`execute(program, stdin, *, timeout_s, memory_mb)` starts the harness `rewards/code/sandbox_child.py`
in a fresh `python -I -S` through the strongest isolation backend the machine offers, feeds
`stdin` from a file, collects capped stdout/stderr and the harness's result frames, and returns
an `ExecResult`.
`execute_many` runs many of them on a bounded thread pool (each run is its own process tree).

Isolation layers and their backends: `rewards.code.isolation`.

Not covered: CPU/memory totals across a run's processes (no cgroups: up to `nproc` processes,
each with its own address-space limit), kernel exploits, timing side channels, and reads of
world-readable files (the filesystem is read-only, not hidden). Statuses are decided here from
what the OS reports (deadline, signals, caps, exit code); test verdicts live in `rewards.code`.
Design after the usual judge sandboxes (isolate, nsjail, bubblewrap); written from scratch.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import marshal
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rewards.code.isolation import (
    BACKENDS,
    CHILD,
    Backend,
    _interpreter_exposures,
    _kill_tree,
    _mount_namespace,
    detect_backend,
)

__all__ = [
    "BACKENDS",
    "CHILD",
    "STATUSES",
    "CallOutcome",
    "ExecResult",
    "Limits",
    "SandboxError",
    "detect_backend",
    "execute",
    "execute_many",
    "run_program",
]

log = logging.getLogger(__name__)

STATUSES = ("ok", "error", "timeout", "memory", "killed", "output_limit")
UID_BASE, UID_POOL = 3_000_000_000, 64  # unused ids, one per concurrent run
_BOOT = (
    "import marshal,sys;f=open(sys.argv[1],'rb');c=marshal.load(f);j=marshal.load(f);"
    "f.close();g={'__name__':'rewards.code.sandbox_child'};exec(c,g);g['main'](j)"
)


class SandboxError(RuntimeError):
    """The sandbox itself failed (the harness died before the program started): an
    infrastructure problem, never a verdict on the program."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits. `nproc` counts the run's processes (its own uid when root)."""

    timeout_s: float = 2.0
    memory_mb: int = 512
    nproc: int = 32
    fsize_mb: int = 16
    nofile: int = 64
    tmpfs_mb: int = 32
    max_output_bytes: int = 1 << 20
    repr_cap: int = 10_000


@dataclass(frozen=True)
class CallOutcome:
    """What the child returned for one function-call case: a repr, or an exception description."""

    kind: str  # "value" | "raise" | "memory"
    text: str


@dataclass(frozen=True)
class ExecResult:
    """Status (one of STATUSES), captured output, exit code (None if killed), wall seconds."""

    status: str
    stdout: str
    stderr: str
    exit_code: int | None
    wall_s: float
    calls: dict[int, CallOutcome] = field(default_factory=dict)
    memory_error: bool = False


@functools.cache
def _harness_code() -> bytes:
    """The harness compiled once (saves ~3 ms of CPU per run), marshalled for the bootstrap."""
    with open(CHILD, encoding="utf-8") as f:
        return marshal.dumps(compile(f.read(), CHILD, "exec"))


_free_uids: queue.Queue = queue.Queue()
for _i in range(UID_POOL):
    _free_uids.put(UID_BASE + _i)


def _job(
    program: str, calls: list[str], workdir: str, uid: int | None, backend: Backend, limits: Limits
) -> dict:
    rl = {
        "as": limits.memory_mb << 20,
        "cpu": int(limits.timeout_s) + 1,
        "nproc": limits.nproc,
        "fsize": limits.fsize_mb << 20,
        "nofile": limits.nofile,
        "core": 0,
    }
    if uid is None:
        rl.pop("nproc")  # shared with the parent's own uid: would throttle the parent instead
    return {
        "program": program,
        "calls": list(calls),
        "workdir": workdir,
        "uid": uid,
        "gid": uid,
        "mounts": backend.mounts,
        "no_new_privs": True,
        "tmpfs_mb": limits.tmpfs_mb,
        "limits": rl,
        "repr_cap": limits.repr_cap,
        "host_mnt_ns": _mount_namespace(),
        "expose": [list(e) for e in _interpreter_exposures()] if backend.drop_uid else [],
    }


def _spawn(argv, stdin_path, workdir, fd, backend):
    with open(stdin_path, "rb") as stdin:
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(fd,),
            cwd=workdir,
            env={},
            start_new_session=not backend.mounts,
        )


def _collect(proc, result_fd, deadline, cap):
    """Read stdout, stderr and result frames until EOF, the deadline or a cap. -> (bufs, why)."""
    bufs = {"out": bytearray(), "err": bytearray(), "res": bytearray()}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    sel.register(result_fd, selectors.EVENT_READ, "res")
    why = None
    try:
        while sel.get_map() and why is None:
            left = deadline - time.monotonic()
            if left <= 0:
                why = "timeout"
                break
            events = sel.select(min(left, 0.25))
            if not events and proc.poll() is not None:
                break  # main process gone, a stray holder keeps a pipe open (no PID namespace)
            for key, _ in events:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                bufs[key.data] += chunk
                if len(bufs[key.data]) > cap:
                    why = "output_limit"
    finally:
        sel.close()
    return bufs, why


def _status(why, proc_rc, memory_error) -> tuple[str, int | None]:
    if why is not None:
        return why, None
    if proc_rc < 0 or proc_rc >= 128:  # unshare re-raises the signal that killed its child
        sig = -proc_rc if proc_rc < 0 else proc_rc - 128
        return ("timeout" if sig == signal.SIGXCPU else "killed"), None
    if memory_error:
        return "memory", proc_rc
    return ("ok" if proc_rc == 0 else "error"), proc_rc


def _parse_frames(buf: bytes) -> dict[int, CallOutcome]:
    """Frames `b"<index> <kind> <len>\\n<payload>"`; stops at the first malformed one."""
    out, pos = {}, 0
    while pos < len(buf):
        nl = buf.find(b"\n", pos)
        head = buf[pos:nl].split(b" ") if nl >= 0 else []
        if len(head) != 3 or not head[2].isdigit():
            break
        idx, kind, n = head[0], head[1].decode("ascii", "replace"), int(head[2])
        payload = buf[nl + 1 : nl + 1 + n]
        if len(payload) < n or kind not in ("value", "raise", "memory", "ready"):
            break
        try:
            out[int(idx)] = CallOutcome(kind, payload.decode("utf-8", "replace"))
        except ValueError:
            break
        pos = nl + 1 + n
    return out


def _run_in(workdir, program, stdin, calls, limits, backend, uid):
    if uid is not None:
        os.chown(workdir, uid, uid)
        os.chmod(workdir, 0o700)
    job_path, stdin_path = os.path.join(workdir, ".job"), os.path.join(workdir, ".stdin")
    with open(job_path, "wb") as f:
        f.write(_harness_code())
        f.write(marshal.dumps(_job(program, calls, workdir, uid, backend, limits)))
    with open(stdin_path, "wb") as f:
        f.write(stdin.encode("utf-8"))
    rfd, wfd = os.pipe()
    argv = [*backend.prefix, sys.executable, "-I", "-S", "-c", _BOOT, job_path, str(wfd)]
    start = time.monotonic()
    try:
        proc = _spawn(argv, stdin_path, workdir, wfd, backend)
    finally:
        os.close(wfd)
    try:
        bufs, why = _collect(proc, rfd, start + limits.timeout_s, limits.max_output_bytes)
        if why is None:
            try:
                proc.wait(max(0.0, start + limits.timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                why = "timeout"
    finally:
        _kill_tree(proc, backend, uid)
        proc.wait()
        os.close(rfd)
        proc.stdout.close()
        proc.stderr.close()
    frames = _parse_frames(bytes(bufs["res"]))
    if frames.pop(-2, None) is None and why is None:
        raise SandboxError(
            f"rewards.code.sandbox: harness failed before the program ran (exit "
            f"{proc.returncode}): {_text(bufs['err'])[-2000:]}"
        )
    memory_error = -1 in frames and frames.pop(-1).kind == "memory"
    status, code = _status(why, proc.returncode, memory_error)
    return ExecResult(
        status,
        _text(bufs["out"]),
        _text(bufs["err"]),
        code,
        time.monotonic() - start,
        frames,
        memory_error,
    )


def _text(buf: bytearray) -> str:
    return bytes(buf).decode("utf-8", "replace")


def run_program(
    program: str,
    stdin: str = "",
    calls: list[str] | tuple[str, ...] = (),
    *,
    limits: Limits = Limits(),
    backend: Backend | None = None,
) -> ExecResult:
    """`execute` plus function-call cases evaluated after the program, results in `.calls`."""
    if not isinstance(program, str) or not isinstance(stdin, str):
        raise TypeError("rewards.code.sandbox: program and stdin must be str")
    backend = backend or detect_backend()
    uid = _free_uids.get() if backend.drop_uid else None
    workdir = tempfile.mkdtemp(prefix="rlr-sbx-")
    try:
        return _run_in(workdir, program, stdin, list(calls), limits, backend, uid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if uid is not None:
            _free_uids.put(uid)


def execute(
    program: str, stdin: str = "", *, timeout_s: float, memory_mb: int, limits: Limits | None = None
) -> ExecResult:
    """Run `program` with `stdin` in a fresh sandboxed process; never raises for its behaviour."""
    base = limits or Limits()
    lim = dataclasses.replace(base, timeout_s=float(timeout_s), memory_mb=int(memory_mb))
    return run_program(program, stdin, limits=lim)


def execute_many(
    programs: list[str],
    stdins: list[str] | None = None,
    *,
    timeout_s: float,
    memory_mb: int,
    max_workers: int = 4,
) -> list[ExecResult]:
    """`execute` for many programs on a bounded thread pool; results in input order."""
    stdins = stdins if stdins is not None else [""] * len(programs)
    if len(stdins) != len(programs):
        raise ValueError(f"execute_many: {len(programs)} programs but {len(stdins)} stdins")
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, UID_POOL))) as pool:
        return list(
            pool.map(
                lambda ps: execute(ps[0], ps[1], timeout_s=timeout_s, memory_mb=memory_mb),
                zip(programs, stdins),
            )
        )
