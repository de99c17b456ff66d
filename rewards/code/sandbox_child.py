"""The in-sandbox harness: set up isolation, drop privileges, run one untrusted program.

Run by `rewards.code.sandbox` as `python -I -S -c BOOT JOB FD` (BOOT executes this file's code
object, compiled once by the parent and shipped in JOB, and calls `main`); it also runs as a plain
script, and trusted code never imports it. Starting with the privileges the launcher gave it
(root inside fresh PID/network/mount namespaces where the machine allows), in order: it reads and
deletes the job file; remounts every mount read-only and nosuid and mounts a small tmpfs on the
working dir, if asked; drops to the run's uid/gid with no groups and `PR_SET_NO_NEW_PRIVS`;
applies the rlimits; runs the program as `__main__`, then each function-call case, writing
`repr(value)` (or the exception type) to the result pipe as length-prefixed frames.

It decides nothing: no verdicts, and expected values never enter the child, so the program
reading the result pipe learns nothing it could exploit. It imports little (no json/re): its
start-up time is the sandbox's per-run cost.
"""

import marshal
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
_KEEP_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
RLIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "nproc": resource.RLIMIT_NPROC,
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
}


def _libc():
    """`mount` and `prctl` from libc via the `_ctypes` core only: importing the `ctypes`
    package costs about 7 ms of CPU per run, a quarter of the interpreter's start-up."""
    try:
        import _ctypes

        class CInt(_ctypes._SimpleCData):
            _type_ = "i"

        class Fn(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = CInt

        class Libc:
            _handle = _ctypes.dlopen(None)

        class Calls:
            mount = staticmethod(Fn(("mount", Libc)))
            prctl = staticmethod(Fn(("prctl", Libc)))

        return Calls
    except (ImportError, AttributeError, TypeError):  # another Python: the public package
        import ctypes

        return ctypes.CDLL(None, use_errno=True)


def _mount_points():
    """(mount point, kept flags) for every mount, parsed from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f.read().decode().splitlines():
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            flags = 0
            for opt in fields[5].split(","):
                flags |= _KEEP_FLAGS.get(opt, 0)
            out.append((point, flags))
    return out


def _expose(libc, hidden, keep):
    """Cover `hidden` (a directory others cannot enter) with an empty tmpfs, bind `keep` back."""
    fd = os.open(keep, os.O_PATH | os.O_DIRECTORY)
    data = b"size=64k,mode=0755"
    if libc.mount(b"tmpfs", hidden.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, data) != 0:
        raise OSError(f"sandbox: cannot mount tmpfs on {hidden}")
    os.mkdir(keep)
    source = f"/proc/self/fd/{fd}".encode()
    if libc.mount(source, keep.encode(), None, MS_BIND | MS_REC, None) != 0:
        raise OSError(f"sandbox: cannot bind {keep}")
    os.close(fd)


def _isolate_filesystem(libc, workdir, uid, gid, tmpfs_mb, expose):
    """Interpreter reachable, everything read-only in this (private) mount namespace, then a
    tmpfs on workdir."""
    for hidden, keep in expose:
        _expose(libc, hidden, keep)
    for point, flags in _mount_points():
        rc = libc.mount(
            None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | flags, None
        )
        if rc != 0 and os.path.isdir(point):
            raise OSError(f"sandbox: cannot remount {point} read-only")
    owner = f",uid={uid},gid={gid}" if uid is not None else ""
    data = f"size={tmpfs_mb}m,mode=0700{owner}".encode()
    if libc.mount(b"tmpfs", workdir.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, data) != 0:
        raise OSError(f"sandbox: cannot mount tmpfs on {workdir}")


def _drop_privileges(libc, uid, gid):
    if uid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    if libc is not None:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # the uid change cleared unshare's --kill-child


def _apply_limits(limits):
    for name, value in limits.items():
        resource.setrlimit(RLIMITS[name], (value, value))


def _send(fd, index, kind, text):
    payload = text.encode("utf-8", "replace")
    os.write(fd, b"%d %s %d\n" % (index, kind.encode(), len(payload)) + payload)


def _describe(exc):
    return f"{type(exc).__name__}: {exc}"[:2000]


def _run_calls(fd, ns, calls, repr_cap, _eval=eval, _compile=compile, _repr=repr):
    """Builtins bound before the program runs, so patching `builtins` does not reach them."""
    for i, call in enumerate(calls):
        try:
            value = _eval(_compile(call, "<call>", "eval"), ns)
            _send(fd, i, "value", _repr(value)[:repr_cap])
        except MemoryError:
            _send(fd, i, "memory", "MemoryError")
        except BaseException as exc:
            _send(fd, i, "raise", _describe(exc))


def _run_program(fd, job):
    import builtins

    ns = {"__name__": "__main__", "__builtins__": builtins}
    sys.argv = ["main.py"]
    try:
        code = compile(job["program"], "main.py", "exec")
        exec(code, ns)
    except SystemExit as exc:  # as CPython does: int -> status, None -> 0, other -> printed, 1
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        _exit(exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1))
    except MemoryError:
        _send(fd, -1, "memory", "MemoryError")
        os._exit(1)
    except BaseException:
        sys.__excepthook__(*sys.exc_info())
        sys.stderr.flush()
        os._exit(1)
    _run_calls(fd, ns, job["calls"], job["repr_cap"])
    _exit(0)


def _exit(code):
    """Flush the program's streams and leave without running its atexit hooks."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except ValueError:  # the program closed its own stream: nothing left to flush
        pass
    except OSError:  # as CPython: a failed final flush makes the exit status 120
        code = code or 120
    os._exit(code & 255)


def main(job=None):
    """argv: JOB FD. JOB holds two marshal records: this file's code object (for the parent's
    `-c` bootstrap, which saves compiling it per run) and the job dict."""
    job_path, fd = sys.argv[1], int(sys.argv[2])
    if job is None:
        with open(job_path, "rb") as f:
            marshal.load(f)
            job = marshal.load(f)
    os.unlink(job_path)
    libc = _libc() if (job["mounts"] or job["no_new_privs"]) else None
    if job["mounts"]:
        if os.readlink("/proc/self/ns/mnt") == job["host_mnt_ns"]:
            raise OSError("sandbox: refusing to remount the host's mount namespace read-only")
        _isolate_filesystem(
            libc, job["workdir"], job["uid"], job["gid"], job["tmpfs_mb"], job["expose"]
        )
    os.chdir(job["workdir"])
    _drop_privileges(libc, job["uid"], job["gid"])
    sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    sys.stderr.reconfigure(encoding="utf-8", errors="replace")
    sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    _apply_limits(job["limits"])
    _send(fd, -2, "ready", "")  # setup done: from here on, what happens is the program's doing
    _run_program(fd, job)


if __name__ == "__main__":
    main()
