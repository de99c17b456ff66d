"""Adversarial properties of rewards.code.sandbox: one attack per test; the parent survives and returns
within the limit plus a margin. These run as root with namespaces on CI; where the strongest
backend is unavailable the tests that need it are skipped with the reason."""

import marshal
import os
import socket
import time

import pytest

from rewards.code import isolation, sandbox
from rewards.code.sandbox import BACKENDS, Limits, execute, execute_many, run_program

TIMEOUT = 1.0
MARGIN = 2.0  # process start and teardown on 2 busy cores
NAMESPACES = sandbox.detect_backend().name == "unshare"
needs_ns = pytest.mark.skipif(not NAMESPACES, reason="needs root + unshare namespaces")


def run(program, stdin=""):
    start = time.monotonic()
    res = execute(program, stdin, timeout_s=TIMEOUT, memory_mb=256)
    assert time.monotonic() - start < TIMEOUT + MARGIN
    return res


def sandbox_uid_processes():
    """Live (not zombie) PIDs owned by any uid of the sandbox pool."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            uid, state = int(fields["Uid"].split()[0]), fields["State"].split()[0]
        except (OSError, KeyError, ValueError):
            continue
        if state != "Z" and sandbox.UID_BASE <= uid < sandbox.UID_BASE + sandbox.UID_POOL:
            found.append(int(pid))
    return found


def test_stdin_is_fed_and_stdout_and_exit_code_are_captured():
    res = run(
        "import sys\nprint(input()[::-1])\nprint('oops', file=sys.stderr)\nsys.exit(3)", "abc\n"
    )
    assert (res.status, res.exit_code, res.stdout, res.stderr) == ("error", 3, "cba\n", "oops\n")


def test_infinite_loop_times_out():
    res = run("while True:\n    pass")
    assert res.status == "timeout" and res.exit_code is None


def test_sleep_times_out_on_the_wall_clock():
    res = run("import time\ntime.sleep(30)\nprint('woke')")
    assert res.status == "timeout" and res.stdout == ""


@needs_ns
def test_fork_bomb_is_contained_and_leaves_no_process():
    res = run(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    )
    assert res.status == "timeout"
    assert sandbox_uid_processes() == []


def test_memory_bomb_reports_memory():
    res = run("x = bytearray(4 << 30)\nprint('allocated')")
    assert res.status == "memory" and "allocated" not in res.stdout


def test_output_flood_is_cut_at_the_cap():
    start = time.monotonic()
    res = execute(
        "while True:\n    print('x' * 4096)",
        timeout_s=5.0,
        memory_mb=256,
        limits=Limits(max_output_bytes=1 << 16),
    )
    assert res.status == "output_limit"
    assert time.monotonic() - start < 5.0  # cut at the cap, not at the deadline
    assert len(res.stdout.encode()) <= (1 << 16) + 65536


@needs_ns
def test_writes_outside_the_working_dir_fail_and_inside_succeed(tmp_path):
    os.chmod(tmp_path, 0o777)
    targets = [str(tmp_path / "escape"), "/tmp/rlr-escape-test", "/dev/shm/rlr-escape-test"]
    program = "import os\nopen('inside.txt', 'w').write('ok')\nprint(os.getcwd())\n" + "".join(
        f"try:\n    open({t!r}, 'w').write('x')\n    print('WROTE')\nexcept OSError:\n    pass\n"
        for t in targets
    )
    res = run(program)
    assert res.status == "ok" and "WROTE" not in res.stdout
    assert not any(os.path.exists(t) for t in targets)
    assert not os.path.exists(res.stdout.splitlines()[0])  # private working dir removed


def test_parent_environment_secrets_are_not_visible(monkeypatch):
    monkeypatch.setenv("RLR_SECRET_TOKEN", "hunter2-secret")
    res = run(
        "import os\nprint(dict(os.environ))\n"
        "for p in ('/proc/1/environ', '/proc/self/environ'):\n"
        "    try:\n        print(open(p).read())\n    except OSError:\n        pass"
    )
    assert res.status == "ok" and "hunter2-secret" not in res.stdout


@needs_ns
def test_network_connect_to_a_local_listener_fails():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        res = run(
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
            "print('CONNECTED')"
        )
    assert res.status == "error" and "CONNECTED" not in res.stdout


@needs_ns
def test_setsid_daemon_does_not_survive_the_run():
    res = run(
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(30)\n    os._exit(0)\nprint('parent done')"
    )
    assert res.status == "ok" and res.stdout == "parent done\n"
    assert sandbox_uid_processes() == []


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"), reason="killing by uid needs root"
)
def test_degraded_rlimits_backend_still_kills_a_setsid_daemon_by_uid():
    res = run_program(
        "import os\nif os.fork() == 0:\n    os.setsid()\n    while True:\n"
        "        pass\nprint('parent done')",
        limits=Limits(timeout_s=TIMEOUT),
        backend=BACKENDS["rlimits"],
    )
    assert res.stdout == "parent done\n"
    assert sandbox_uid_processes() == []


def test_program_cannot_kill_the_parent():
    me = os.getpid()
    res = run(
        f"import os, signal\nfor target in ({me}, os.getppid(), -1):\n"
        "    try:\n        os.kill(target, signal.SIGKILL)\n"
        "    except OSError:\n        pass\n"
        "print('still here', os.getuid())"
    )
    assert os.getpid() == me  # we are still running
    assert res.status in ("ok", "killed")
    if NAMESPACES:
        assert res.stdout.startswith("still here") and " 0\n" not in res.stdout  # not root


def test_missing_namespaces_degrade_with_a_warning(monkeypatch):
    monkeypatch.setattr(isolation, "_probe", lambda prefix: False)
    isolation._detect_backend.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="degraded isolation"):
            assert sandbox.detect_backend().name == "rlimits"
    finally:
        isolation._detect_backend.cache_clear()


def test_execute_many_keeps_input_order_under_parallel_workers():
    progs = [f"print({i} * {i})" for i in range(6)]
    res = execute_many(progs, timeout_s=TIMEOUT, memory_mb=256, max_workers=3)
    assert [r.stdout for r in res] == [f"{i * i}\n" for i in range(6)]


def test_harness_failure_raises_sandbox_error_not_a_program_verdict(monkeypatch):
    broken = marshal.dumps(
        compile("def main(job):\n    raise OSError('no mounts here')", "harness", "exec")
    )
    monkeypatch.setattr(sandbox, "_harness_code", lambda: broken)
    with pytest.raises(sandbox.SandboxError, match="no mounts here"):
        run("print(1)")


@pytest.mark.skipif(
    not isolation._probe(BACKENDS["user-unshare"].prefix),
    reason="needs unprivileged user namespaces",
)
def test_user_namespace_backend_still_isolates_files_and_network():
    program = (
        "import socket\ntry:\n    open('/tmp/rlr-escape-userns', 'w')\nexcept OSError:\n"
        "    print('ro')\ntry:\n    socket.create_connection(('127.0.0.1', 9), 0.5)\n"
        "except OSError:\n    print('no net')"
    )
    res = run_program(program, limits=Limits(timeout_s=TIMEOUT), backend=BACKENDS["user-unshare"])
    assert (res.status, res.stdout) == ("ok", "ro\nno net\n")
    assert not os.path.exists("/tmp/rlr-escape-userns")
