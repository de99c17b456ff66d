"""Evaluate a policy on held-out tasks: greedy and sampled completions, scored by the verifiers.

`evaluate_policy` runs the engine greedily (n=1, temperature 0) and with sampling (n = `samples`),
scores both with the scorer it is handed (`rlreason.scoring.Scorer`, built on the rewards side),
builds one `ProblemRecord` per task and returns `summarize`'s metrics (pass@k, maj@k, mean@k,
greedy accuracy, format rate, length, per-difficulty), plus `eval/think_rate` and greedy
format/length. Fixed seeds make it repeatable. Prompts are encoded with the tokenizer's
`encode_prompt` (BOS where the tokenizer adds one; `encode` for a tokenizer without it);
`stop_strings` end completions on decoded text, every EOS id of the tokenizer ends them too.
Data-parallel (`dist` with world > 1): rank r generates and scores a contiguous slice of the
tasks, drawing the random numbers the whole chunk would draw for its rows (the engine's
`row_offset`), and the per-problem records are gathered, so every rank returns the metrics one
process computes.

Not here: the metric definitions (metrics.py), plots (plots.py), the CLI (experiments/eval.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from rlreason.eval.metrics import ProblemRecord, summarize
from rlreason.sampling.engine import generate
from rlreason.scoring import Scorer


def _powers_of_two(n: int) -> list[int]:
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks


def _run(
    model,
    tokenizer,
    prompts,
    span,
    *,
    n,
    temperature,
    seed,
    sampling,
    max_new_tokens,
    stop_strings,
    stop_ids,
    batch_prompts,
    prefix,
):
    """Completions (with `prefix` put back in front) and their token lengths, prompt-major, of the
    prompts [lo, hi) of `span` = (lo, hi, total); chunks of `batch_prompts` are cut from all
    `total` prompts, so a slice samples what one process samples for it."""
    (lo, hi, total), texts, lengths = span, [], []
    for i in range(0, total, batch_prompts):
        a, b, end = max(i, lo), min(i + batch_prompts, hi), min(i + batch_prompts, total)
        if a >= b:
            continue
        r = generate(
            model,
            prompts[a - lo : b - lo],
            n=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=sampling.get("top_k"),
            top_p=sampling.get("top_p"),
            stop_strings=stop_strings,
            stop_ids=stop_ids,
            seed=seed + i,
            tokenizer=tokenizer,
            row_offset=(a - i) * n,
            total_rows=(end - i) * n,
        )
        texts += [prefix + t for t in r.texts]
        lengths += [len(c) for c in r.completion_ids]
    return texts, lengths


def _records(tasks: list, samples: int, s, s_len: list[int], g) -> list[ProblemRecord]:
    """One record per task from the sampled verdicts `s` and the greedy verdicts `g`."""
    records = []
    for i, task in enumerate(tasks):
        sl = slice(i * samples, (i + 1) * samples)
        records.append(
            ProblemRecord(
                correct=s.correct[sl],
                answers=s.answers[sl],
                scores=list(s.total[sl]),
                format_ok=s.format_ok[sl],
                lengths=s_len[sl],
                difficulty=(getattr(task, "meta", None) or {}).get("difficulty"),
                greedy_correct=g.correct[i],
            )
        )
    return records


def evaluate_policy(
    model,
    tokenizer,
    tasks: Sequence,
    render: Callable[[Any], str],
    scorer: Scorer,
    *,
    samples: int = 4,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    stop_strings: Sequence[str] | None = None,
    stop_ids=None,
    seed: int = 0,
    top_k=None,
    top_p=None,
    ks=None,
    batch_prompts: int = 64,
    n_boot: int = 200,
    completion_prefix: str = "",
    dist=None,
) -> dict[str, float]:
    """`completion_prefix`: text the rendered prompt ends with that belongs to the answer (e.g. a
    pre-filled `<answer>`); it is put back in front of every completion before scoring.
    `stop_ids` (exact token-id sequences) is kept for callers that still pass ids.
    `dist` (rlreason.distributed.Dist): shard the tasks over its ranks (module docstring)."""
    all_tasks = list(tasks)
    world, rank = (dist.world, dist.rank) if dist is not None else (1, 0)
    N = len(all_tasks)
    lo, hi = rank * N // world, (rank + 1) * N // world
    tasks = all_tasks[lo:hi]
    encode = getattr(tokenizer, "encode_prompt", tokenizer.encode)
    prompts = [encode(render(t)) for t in tasks]
    run = functools.partial(
        _run,
        model,
        tokenizer,
        prompts,
        (lo, hi, N),
        sampling={"top_k": top_k, "top_p": top_p},
        max_new_tokens=max_new_tokens,
        stop_strings=stop_strings,
        stop_ids=stop_ids,
        batch_prompts=batch_prompts,
        prefix=completion_prefix,
    )
    g_texts, g_len = run(n=1, temperature=0.0, seed=seed)
    s_texts, s_len = run(n=samples, temperature=temperature, seed=seed + 1)
    records, g_fmt, g_think, s_think = [], [], [], []
    if tasks:  # a rank may hold no task when there are fewer tasks than ranks
        g = scorer(g_texts, tasks)
        s = scorer(s_texts, [t for t in tasks for _ in range(samples)])
        records = _records(tasks, samples, s, s_len, g)
        g_fmt, g_think, s_think = g.format_ok, g.has_reasoning, s.has_reasoning
    if world > 1:
        parts = dist.all_gather((records, g_fmt, g_think, s_think, g_len))
        records, g_fmt, g_think, s_think, g_len = (
            [x for part in parts for x in part[j]] for j in range(5)
        )
    metrics = summarize(
        records,
        ks or _powers_of_two(samples),
        key=scorer.answer_key,
        n_boot=n_boot,
        seed=seed,
    )
    metrics["eval/think_rate"] = sum(s_think) / len(s_think)
    metrics["eval/greedy_format_rate"] = sum(g_fmt) / len(g_fmt)
    metrics["eval/greedy_length_mean"] = sum(g_len) / len(g_len)
    metrics["eval/greedy_think_rate"] = sum(g_think) / len(g_think)
    return metrics
