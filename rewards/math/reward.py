"""Math answer checking: public API, the reward, and the pool of killable sympy workers.

- `is_equivalent(pred, gold) -> bool`; `check_many(pairs)` / `check_many_verdicts(pairs)` for
  many `(pred, gold)` pairs (`Verdict(equal, method)` says how each was decided). Both sides go
  through `extract_answer` (`rewards.math.normalize`), so whole completions work.
- `math_reward(completions, tasks, mode=) -> Scores`: 1.0 when the answer `rewards.math.extract`
  reads in `mode` ("strict" or "lenient") is equivalent to `task.answer`; counts errors (incl.
  tasks without an answer) and timeouts; one bad sample never raises.
- `canonical_answer(text)`: a grouping key for majority votes.

Cheap decisions happen in-process; the rest goes to sympy in `POOL_WORKERS` killable worker
processes with a per-pair deadline (`_Pool`): processes, not signals, since SIGALRM timeouts fail
off the main thread (huggingface/Math-Verify#50, #55; huggingface/trl#5281) and a hung
`ProcessPoolExecutor` task cannot be reclaimed (areal-project/AReaL#1426).
It deliberately does not import torch or sympy (sympy lives in the workers), and does not grade
natural-language answers.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import wait
from pathlib import Path

from rewards.math.answers import PLAIN_NUMBER, parse_checked, read_pair
from rewards.math.compare import EXACT, NeedsSymbolic, trees_equivalent
from rewards.math.exact import NotExact, exact_value
from rewards.math.labels import reading
from rewards.math.normalize import extract_answer, normalize
from rewards.math.parse import TooBig

__all__ = [
    "extract_answer",
    "is_equivalent",
    "check_many",
    "check_many_verdicts",
    "Verdict",
    "canonical_answer",
    "start_pool",
    "close_pool",
]

DEFAULT_TIMEOUT_S = 2.0
POOL_WORKERS = 2
CACHE_SIZE = 100_000
_PLAIN_NUMBER = PLAIN_NUMBER  # whole answer, via fullmatch; ASCII digits only
MAX_ANSWER_CHARS = 2_000  # longer answers are compared as raw strings, never normalised/parsed
_STARTUP_TIMEOUT_S = 60.0
_MAX_FAILED_STARTS = 3


@dataclass(frozen=True)
class Verdict:
    """`equal` and how it was decided: `method` is one of no-answer, string, parse, guard, exact,
    symbolic, timeout, error."""

    equal: bool
    method: str


# -- in-process fast path ---------------------------------------------------------------------
def _parse_checked(text: str):
    """(tree, None) or (None, "parse" | "guard")."""
    return parse_checked(text)


def _fast_verdict(pred: str, gold: str) -> Verdict | tuple[str, str]:
    """A Verdict decided in-process, or the normalised (gold, pred) pair that needs sympy."""
    p, g = extract_answer(pred), extract_answer(gold)
    if p is None or g is None:
        return Verdict(False, "no-answer")
    if _PLAIN_NUMBER.fullmatch(p) and _PLAIN_NUMBER.fullmatch(g):  # most answers: skip the rest
        return Verdict(Fraction(p) == Fraction(g), "exact")
    if max(len(p), len(g)) > MAX_ANSWER_CHARS:
        return Verdict(p.strip() == g.strip(), "guard")
    pn, gn = normalize(p), normalize(g)
    if pn == gn:
        return Verdict(True, "string")
    read = read_pair(gn, pn)  # gold-aware readings (`rewards.math.answers`), then two trees
    if read.equal is not None:
        return Verdict(read.equal, read.method)
    try:
        return Verdict(trees_equivalent(read.gold, read.pred, EXACT), "exact")
    except NeedsSymbolic:
        return read.gold_text, read.pred_text
    except TooBig:
        return Verdict(False, "guard")


class _Memo:
    """Thread-safe LRU of decided verdicts keyed by the (gold, pred) normalised pair."""

    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key, verdict: Verdict) -> None:
        with self.lock:
            self.data[key] = verdict
            if len(self.data) > self.size:
                self.data.popitem(last=False)


_MEMO = _Memo(CACHE_SIZE)


# -- worker pool -------------------------------------------------------------------------------
def _worker_env() -> dict:
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds `rewards/`
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


class _Worker:
    """One `python -m rewards.math.worker` process; starts asynchronously (`ready` once up)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewards.math.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_worker_env(),
            text=True,
            bufsize=1,
        )
        self.ready, self.started = False, time.monotonic()

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, job: tuple[str, str]) -> None:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()

    def recv(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise EOFError("math checker worker exited")
        return json.loads(line)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            stream.close()


class _Pool:
    """Killable worker processes with a per-job wall-clock deadline.

    Each worker is a fresh `python -m rewards.math.worker` talking JSON lines over pipes
    (`subprocess`: no `fork` of a threaded, torch-loaded parent, no re-import of `__main__`).
    Started lazily and asynchronously: a pair goes only to a worker that reported ready, so the
    ~1 s start-up never counts against a deadline. Deadlines are enforced by the parent
    (`multiprocessing.connection.wait` on the pipes, then `kill()`), so they hold off the main
    thread; a lock serialises callers; a killed or crashed worker is replaced. Workers close at
    exit; a forked child never talks to its parent's workers but starts its own.
    """

    def __init__(self, size: int):
        self.size, self.workers, self.lock = size, [], threading.Lock()
        self.failed_starts = 0  # workers that died before reporting ready, in a row
        self.pid = os.getpid()

    def start(self) -> None:
        with self.lock:
            if self.pid != os.getpid():  # we were forked: those workers belong to the parent
                self.workers, self.pid = [], os.getpid()
            self.workers = [w for w in self.workers if w.proc.poll() is None]
            self.workers += [_Worker() for _ in range(self.size - len(self.workers))]

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)
        self.workers.append(_Worker())

    def run(self, jobs: list[tuple[str, str]], timeout_s: float) -> list[Verdict]:
        self.start()
        with self.lock:
            results: list[Verdict | None] = [None] * len(jobs)
            pending, busy = deque(enumerate(jobs)), {}
            while pending or busy:
                self._dispatch(pending, busy, timeout_s)
                self._collect(results, busy)
                self._expire(results, pending, busy)
            return results

    def _dispatch(self, pending, busy, timeout_s) -> None:
        for worker in [w for w in self.workers if w.ready and w not in busy]:
            if not pending:
                return
            i, job = pending.popleft()
            try:
                worker.send(job)
            except OSError:  # died since it was last seen: requeue the job, replace the worker
                pending.appendleft((i, job))
                self._replace(worker)
                continue
            busy[worker] = (i, time.monotonic() + timeout_s)

    def _collect(self, results, busy) -> None:
        starting = [w for w in self.workers if not w.ready]
        deadlines = [d for _, d in busy.values()]
        deadlines += [w.started + _STARTUP_TIMEOUT_S for w in starting]
        timeout = max(0.0, min(deadlines) - time.monotonic())
        for worker in wait(list(busy) + starting, timeout=timeout):
            try:
                reply = worker.recv()
            except (EOFError, OSError, ValueError):
                if worker in busy:
                    results[busy.pop(worker)[0]] = Verdict(False, "error")
                self.failed_starts += not worker.ready
                self._replace(worker)
                continue
            if not worker.ready:
                worker.ready, self.failed_starts = True, 0
                continue
            i, deadline = busy.pop(worker)
            if time.monotonic() > deadline:  # late: same verdict as if it had been killed
                results[i] = Verdict(False, "timeout")
            else:
                method = "symbolic" if reply.get("ok") else "error"
                results[i] = Verdict(bool(reply.get("equal")), method)

    def _expire(self, results, pending, busy) -> None:
        now = time.monotonic()
        for worker, (i, deadline) in list(busy.items()):
            if deadline <= now:
                del busy[worker]
                results[i] = Verdict(False, "timeout")
                self._replace(worker)
        stuck = any(not w.ready and w.started + _STARTUP_TIMEOUT_S <= now for w in self.workers)
        if stuck or self.failed_starts >= _MAX_FAILED_STARTS:
            while pending:  # workers cannot start here: every such sample counts as an error
                results[pending.popleft()[0]] = Verdict(False, "error")

    def close(self) -> None:
        with self.lock:
            for worker in self.workers:
                worker.kill()
            self.workers = []


_POOL = _Pool(POOL_WORKERS)
atexit.register(lambda: _POOL.close())


def start_pool() -> None:
    """Start the worker processes in the background (otherwise the first symbolic check does)."""
    _POOL.start()


def close_pool() -> None:
    """Stop the worker processes now (they are restarted lazily by the next symbolic check)."""
    _POOL.close()


# -- public API --------------------------------------------------------------------------------
def _safe_fast(pred, gold) -> Verdict | tuple[str, str]:
    try:
        return _fast_verdict(pred, gold)
    except Exception:
        return Verdict(False, "error")


def check_many_verdicts(pairs, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Verdict]:
    """Verdicts for `(pred, gold)` pairs; symbolic ones run in parallel in the pool.

    Cheapest first: no answer → False ("no-answer"); equal normalised strings → True
    ("string"); unparsable or over a size guard → False ("parse", "guard"); rational-only pairs,
    and symbolic pairs whose floats differ at a spot point, in-process ("exact"); the rest in a
    worker ("symbolic"). A worker past `timeout_s` (counted from when it takes the pair) is
    killed and the pair is False ("timeout"), as is a late reply; a worker exception gives
    ("error", False). Decided verdicts are memoised by normalised pair (LRU, `CACHE_SIZE`).
    """
    out: list[Verdict | None] = []
    jobs, where = [], {}
    for pred, gold in pairs:
        verdict = _safe_fast(pred, gold) if isinstance(gold, str) else Verdict(False, "error")
        if isinstance(verdict, tuple):
            verdict = _MEMO.get(verdict) or verdict
        if isinstance(verdict, tuple):
            if verdict not in where:
                where[verdict] = len(jobs)
                jobs.append(verdict)
            out.append(verdict)
        else:
            out.append(verdict)
    decided = _POOL.run(jobs, timeout_s) if jobs else []
    for job, verdict in zip(jobs, decided):
        if verdict.method == "symbolic":
            _MEMO.put(job, verdict)
    return [decided[where[v]] if isinstance(v, tuple) else v for v in out]


def check_many(pairs, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[bool]:
    """`is_equivalent` for many `(pred, gold)` pairs at once."""
    return [v.equal for v in check_many_verdicts(pairs, timeout_s)]


def is_equivalent(pred: str, gold: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether `pred` (answer text or whole completion) is mathematically equal to `gold`."""
    return check_many_verdicts([(pred, gold)], timeout_s)[0].equal


def _key(tree) -> str:
    kind = tree[0]
    if kind in ("eq", "chain"):  # a labelled value keys on its value: `x = -3` as `-3`
        stated = reading(tree)
        if stated is None:
            raise NotExact("an equation has no value")
        return _key(stated[1])
    if kind in ("list", "set"):
        return "{" + ",".join(sorted({_key(t) for t in tree[1]})) + "}"
    if kind == "tuple":
        return "(" + ",".join(_key(t) for t in tree[1]) + ")"
    if kind == "interval":
        return (
            ("[" if tree[1] else "(")
            + _key(tree[2])
            + ","
            + _key(tree[3])
            + ("]" if tree[4] else ")")
        )
    value = exact_value(tree)
    if isinstance(value, float):
        return "oo" if value > 0 else "-oo"
    return str(value)


def canonical_answer(text: str) -> str | None:
    """Grouping key for majority votes; None if no answer.

    Exact rational values (and sets/tuples/intervals of them) get a canonical key (`1/2`, `0.5`,
    `\\frac{1}{2}` → `1/2`); anything else keys on its normalised string. Limits: no decimal
    rounding policy (0.3333 and 1/3 get different keys although `is_equivalent` accepts them),
    no merging of symbolically equal expressions (`2\\sqrt3` and `\\sqrt{12}`).
    """
    answer = extract_answer(text)
    if answer is None or len(answer) > MAX_ANSWER_CHARS:
        return answer and answer.strip()
    norm = normalize(answer)
    tree, _ = _parse_checked(norm)
    if tree is None:
        return norm
    try:
        return _key(tree)
    except (NotExact, TooBig, RecursionError):
        return norm
