"""Evaluate a policy on held-out tasks: greedy and sampled completions, scored by the verifiers.

`evaluate_policy` runs the engine greedily (n=1, temperature 0) and with sampling (n = `samples`),
scores both with the scorer it is handed (`rlreason.scoring.Scorer`, built on the rewards side),
builds one `ProblemRecord` per task and returns `summarize`'s metrics (pass@k, maj@k, mean@k,
greedy accuracy, format rate, length, per-difficulty), plus `eval/think_rate` and greedy
format/length. Fixed seeds make it repeatable. Prompts are encoded with the tokenizer's
`encode_prompt` (BOS where the tokenizer adds one; `encode` for a tokenizer without it);
`stop_strings` end completions on decoded text, every EOS id of the tokenizer ends them too.

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
    """Completions (with `prefix` put back in front) and their token lengths, prompt-major."""
    texts, lengths = [], []
    for i in range(0, len(prompts), batch_prompts):
        r = generate(
            model,
            prompts[i : i + batch_prompts],
            n=n,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=sampling.get("top_k"),
            top_p=sampling.get("top_p"),
            stop_strings=stop_strings,
            stop_ids=stop_ids,
            seed=seed + i,
            tokenizer=tokenizer,
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
) -> dict[str, float]:
    """`completion_prefix`: text the rendered prompt ends with that belongs to the answer (e.g. a
    pre-filled `<answer>`); it is put back in front of every completion before scoring.
    `stop_ids` (exact token-id sequences) is kept for callers that still pass ids."""
    tasks = list(tasks)
    encode = getattr(tokenizer, "encode_prompt", tokenizer.encode)
    prompts = [encode(render(t)) for t in tasks]
    run = functools.partial(
        _run,
        model,
        tokenizer,
        prompts,
        sampling={"top_k": top_k, "top_p": top_p},
        max_new_tokens=max_new_tokens,
        stop_strings=stop_strings,
        stop_ids=stop_ids,
        batch_prompts=batch_prompts,
        prefix=completion_prefix,
    )
    g_texts, g_len = run(n=1, temperature=0.0, seed=seed)
    g = scorer(g_texts, tasks)
    s_texts, s_len = run(n=samples, temperature=temperature, seed=seed + 1)
    s = scorer(s_texts, [t for t in tasks for _ in range(samples)])
    metrics = summarize(
        _records(tasks, samples, s, s_len, g),
        ks or _powers_of_two(samples),
        key=scorer.answer_key,
        n_boot=n_boot,
        seed=seed,
    )
    metrics["eval/think_rate"] = sum(s.has_reasoning) / len(s_texts)
    metrics["eval/greedy_format_rate"] = sum(g.format_ok) / len(g.format_ok)
    metrics["eval/greedy_length_mean"] = sum(g_len) / len(g_len)
    metrics["eval/greedy_think_rate"] = sum(g.has_reasoning) / len(g_texts)
    return metrics
