"""Isolation backends of the code sandbox: how a run is launched, and how its process tree dies.

Backend "unshare" (root, util-linux `unshare -m -n -p -f --mount-proc`) layers: a fresh
`python -I -S` with an empty environment; a PID namespace whose PID 1 is the harness, so the
kernel kills every process in it (daemons included) when it dies; a network namespace with only a
downed loopback; a mount namespace with every mount read-only and nosuid and a size-capped private
tmpfs on the working dir; an unused uid/gid per concurrent run (no groups, `no_new_privs`), so
the program has no capabilities and `RLIMIT_NPROC` counts only its own processes; rlimits; caps on
stdout, stderr and the result channel. Directories the dropped uid cannot enter on the way to the
stdlib (e.g. /root for a pyenv Python) are covered by an empty tmpfs with only that path bound back.
"user-unshare" (non-root) keeps the namespaces but not the uid drop; "rlimits" (no namespaces)
keeps uid drop + rlimits and kills by uid or process group, with no network or filesystem
isolation. A degraded backend logs a warning naming what it lacks, once per process. bubblewrap
would give the same layers; util-linux `unshare` suffices, so it is not used.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import subprocess
import sysconfig
import threading
import warnings
from dataclasses import dataclass

log = logging.getLogger("rewards.code.sandbox")

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_child.py")
_UNSHARE = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


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
