"""Worker process of the math checker: reads `[gold, pred]` JSON lines on stdin and answers each
with one JSON line `{"ok": true, "equal": bool}` or `{"ok": false, "error": "..."}` on stdout.

Started by `rewards.math` as `python -m rewards.math.worker` (a fresh interpreter, so nothing of
the parent — torch threads, the user's `__main__` — is inherited). It caps its own address space
(`MEMORY_BYTES`) so a memory bomb kills only this process; the parent enforces wall time by
killing it. It first prints `{"ready": true}` once sympy is imported and warmed up by one
sample check, so a pair's deadline never pays for first-use costs.
Source: this project's design (see `rewards.math` for why processes, not signals).
It deliberately holds no state between pairs.
"""

from __future__ import annotations

import json
import os
import sys

MEMORY_BYTES = 2 << 30


def _limit_memory() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    _limit_memory()
    from rewards.math.symbolic import check_symbolic

    check_symbolic("\\sqrt{2}x+\\sin(x)", "x\\sqrt{8}/2+\\sin x")  # warm sympy's lazy caches
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        try:
            gold, pred = json.loads(line)
            reply = {"ok": True, "equal": bool(check_symbolic(gold, pred))}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
