"""Run one untrusted Python program in a fresh, isolated, resource-limited process.

`execute(program, stdin, *, timeout_s, memory_mb)` starts the harness `rewards/code/child.py`
in a fresh `python -I -S` through the strongest isolation backend the machine offers, feeds
`stdin` from a file, collects capped stdout/stderr and the harness's result frames, and returns
an `ExecResult`.
`execute_many` runs many of them on a bounded thread pool (each run is its own process tree).

Layers (backend "unshare", chosen when `unshare -m -n -p -f --mount-proc` works, as root here):
- a fresh process per run, `python -I -S` (no user site, no PYTHON* variables, no site-packages),
  an empty environment (`env={}`, so none of the parent's secrets);
- PID namespace with its own /proc: the harness is PID 1, so when it exits or the parent
  SIGKILLs it on the wall-clock deadline the kernel kills every process in it, including
  `setsid` daemons; the program cannot see or signal any process outside it. (As PID 1 the
  program ignores signals it sends itself without a handler, e.g. `os.kill(os.getpid(), 11)`);
- network namespace: only a downed loopback, so no connection to anything, local or remote;
- mount namespace: every mount re-mounted read-only and nosuid, plus a private tmpfs (size
  capped) on the run's working directory, which disappears with the namespace; the host-side
  directory (from `mkdtemp`) is removed by the parent afterwards;
- unprivileged uid/gid per concurrent run (a pool of otherwise unused ids, no supplementary
  groups, `no_new_privs`), so the program has no capabilities, cannot signal the root parent,
  and `RLIMIT_NPROC` counts only its own processes;
- rlimits: address space (`memory_mb`), CPU seconds, processes, file size, open files, core 0;
- caps on stdout, stderr and the result channel; exceeding one kills the run (`output_limit`).
Directories the dropped uid cannot enter on the way to the interpreter's stdlib (here /root,
for a pyenv Python) are covered by an empty tmpfs with only that path bound back.
Backend "user-unshare" (non-root with user namespaces) keeps the namespaces but cannot drop to
another uid. Backend "rlimits" (no namespaces) keeps uid drop + rlimits and kills by uid
(`kill -1` as that uid) when root, or by process group otherwise: no network or filesystem
isolation, killed orphans stay zombies until the system's init reaps them, and the stdlib must
be readable by the dropped uid. Both degraded backends log a warning naming what is missing,
once per process (`detect_backend` is cached). bubblewrap would give the same layers; it is not
needed where util-linux `unshare` works (Debian's base system), so it is not used.

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
import sysconfig
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
STATUSES = ("ok", "error", "timeout", "memory", "killed", "output_limit")
UID_BASE, UID_POOL = 3_000_000_000, 64  # unused ids, one per concurrent run
_BOOT = (
    "import marshal,sys;f=open(sys.argv[1],'rb');c=marshal.load(f);j=marshal.load(f);"
    "f.close();g={'__name__':'sandbox_child'};exec(c,g);g['main'](j)"
)
_UNSHARE = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


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


@dataclass(frozen=True)
class Backend:
    """How a run is launched and torn down; `warning` names what it lacks."""

    name: str
    prefix: tuple[str, ...]
    mounts: bool
    drop_uid: bool
    warning: str


BACKENDS = {
    "unshare": Backend("unshare", tuple(_UNSHARE), True, True, ""),
    "user-unshare": Backend(
        "user-unshare",
        ("unshare", "--user", "--map-root-user", *_UNSHARE[1:]),
        True,
        False,
        "not root: the program runs as the parent's uid inside user/PID/"
        "network/mount namespaces (no uid drop)",
    ),
    "rlimits": Backend(
        "rlimits",
        (),
        False,
        os.geteuid() == 0,
        "no Linux namespaces: no network or filesystem isolation; process tree "
        "killed by uid (root) or process group only",
    ),
}


def _probe(prefix: tuple[str, ...]) -> bool:
    if not shutil.which(prefix[0]):
        return False
    try:
        done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, env={})
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


_detect_lock = threading.Lock()


def detect_backend() -> Backend:
    """The strongest backend that works here, probed once; warns when it is a degraded one."""
    with _detect_lock:
        return _detect_backend()


@functools.cache
def _detect_backend() -> Backend:
    order = ["unshare", "user-unshare"] if os.geteuid() == 0 else ["user-unshare"]
    chosen = next((BACKENDS[n] for n in order if _probe(BACKENDS[n].prefix)), BACKENDS["rlimits"])
    warning = chosen.warning
    if chosen.drop_uid and not chosen.mounts and _interpreter_exposures():
        warning += (
            f"; the stdlib under {_interpreter_exposures()[0][0]} is unreadable by the "
            "dropped uid, so most imports will fail"
        )
    if warning:
        msg = f"rewards.code.sandbox: degraded isolation ({chosen.name}): {warning}"
        log.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return chosen


def _blocked_ancestor(path: str) -> tuple[str, str] | None:
    """(first ancestor others cannot enter, its child on the way to `path`), or None."""
    parts = os.path.realpath(path).split(os.sep)[1:]
    for depth in range(1, len(parts)):
        here = os.sep + os.path.join(*parts[:depth])
        if not os.stat(here).st_mode & 0o001:
            return here, os.path.join(here, parts[depth])
    return None


@functools.cache
def _interpreter_exposures() -> tuple[tuple[str, str], ...]:
    """Directories to re-expose so the dropped uid can read the stdlib (e.g. under /root)."""
    paths = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], CHILD]
    found = {b for b in map(_blocked_ancestor, paths) if b is not None}
    return tuple(sorted(found))


@functools.cache
def _mount_namespace() -> str:
    """Our mount namespace id; the harness refuses to remount anything if it is still in it."""
    return os.readlink("/proc/self/ns/mnt")


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


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _kill_tree(proc, backend: Backend, uid: int | None) -> None:
    """SIGKILL everything the run started: the namespace's PID 1 (the kernel then kills the rest
    and `unshare` exits once the namespace is empty), else every process of the uid, else the
    process group. Never signals a reaped PID: it may already belong to someone else."""
    if proc.poll() is not None and backend.mounts:
        return  # `unshare` only exits once its namespace is empty
    if backend.mounts:
        for child in _children(proc.pid):
            _signal(child)
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            log.warning(
                "rewards.code.sandbox: namespace of pid %d slow to die; killing unshare", proc.pid
            )
    elif uid is not None:
        for _ in range(2):
            subprocess.run(
                [
                    "setpriv",
                    f"--reuid={uid}",
                    f"--regid={uid}",
                    "--clear-groups",
                    "kill",
                    "-KILL",
                    "-1",
                ],
                capture_output=True,
                env={},
            )
    else:
        _signal(-proc.pid)  # a PGID is not reused while the group has members
    if proc.poll() is None:
        _signal(proc.pid)


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL) if pid > 0 else os.killpg(-pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
