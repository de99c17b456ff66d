"""Evaluate a policy on held-out tasks: greedy and sampled completions, scored by the verifiers.

`Scorer` turns completions into per-sample verdicts using callables handed in by the caller (the
reward composition, the name of the accuracy component, answer extraction and its canonical key),
so rlreason stays independent of `rewards/`. `evaluate_policy` runs the engine greedily (n=1,
temperature 0) and with sampling (n = `samples`), builds one `ProblemRecord` per task and returns
`summarize`'s metrics (pass@k, maj@k, mean@k, greedy accuracy, format rate, length, per-difficulty),
plus `eval/think_rate` and greedy format/length. Fixed seeds make it repeatable.

Not here: the metric definitions (evaluate.py), plots (eval_plots.py), the CLI (experiments/eval.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlreason.eval.metrics import ProblemRecord, summarize
from rlreason.rl.diagnostics import reasoning_of
from rlreason.sampling.engine import generate

CORRECT_AT = 1.0 - 1e-6  # a component value at or above this counts as a correct answer


@dataclass
class Verdicts:
    output: Any  # the reward composition's output (.total, .components, .metrics())
    correct: list[bool]
    format_ok: list[bool]
    answers: list[str | None]


@dataclass
class Scorer:
    reward_fn: Callable[[list[str], list], Any]
    accuracy_key: str
    format_key: str | None = None
    answer_fn: Callable[[str], str | None] | None = None
    answer_key: Callable[[str], Any] | None = None

    def __call__(self, texts: list[str], tasks: list) -> Verdicts:
        out = self.reward_fn(texts, tasks)
        if self.accuracy_key not in out.components:
            raise KeyError(
                f"Scorer: accuracy component {self.accuracy_key!r} not among "
                f"{sorted(out.components)}"
            )
        correct = [v >= CORRECT_AT for v in out.components[self.accuracy_key]]
        fmt = out.components.get(self.format_key) if self.format_key else None
        format_ok = [v > 0 for v in fmt] if fmt is not None else [True] * len(texts)
        answers = [self._answer(t) for t in texts]
        return Verdicts(out, correct, format_ok, answers)

    def _answer(self, text: str) -> str | None:
        if self.answer_fn is None:
            return None
        try:
            return self.answer_fn(text)
        except Exception:  # a hostile completion must not stop evaluation
            return None


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
    n,
    temperature,
    sampling,
    max_new_tokens,
    stop_ids,
    seed,
    batch_prompts,
):
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
            stop_ids=stop_ids,
            seed=seed + i,
            tokenizer=tokenizer,
        )
        texts += r.texts
        lengths += [len(c) for c in r.completion_ids]
    return texts, lengths


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
    pre-filled `<answer>`); it is put back in front of every completion before scoring."""
    tasks = list(tasks)
    prompts = [tokenizer.encode(render(t)) for t in tasks]
    sampling = {"top_k": top_k, "top_p": top_p}
    g_texts, g_len = _run(
        model, tokenizer, prompts, 1, 0.0, sampling, max_new_tokens, stop_ids, seed, batch_prompts
    )
    g_texts = [completion_prefix + t for t in g_texts]
    g = scorer(g_texts, tasks)
    s_texts, s_len = _run(
        model,
        tokenizer,
        prompts,
        samples,
        temperature,
        sampling,
        max_new_tokens,
        stop_ids,
        seed + 1,
        batch_prompts,
    )
    s_texts = [completion_prefix + t for t in s_texts]
    s = scorer(s_texts, [t for t in tasks for _ in range(samples)])
    records = []
    for i, task in enumerate(tasks):
        sl = slice(i * samples, (i + 1) * samples)
        records.append(
            ProblemRecord(
                correct=s.correct[sl],
                answers=s.answers[sl],
                scores=list(s.output.total[sl]),
                format_ok=s.format_ok[sl],
                lengths=s_len[sl],
                difficulty=(getattr(task, "meta", None) or {}).get("difficulty"),
                greedy_correct=g.correct[i],
            )
        )
    metrics = summarize(
        records, ks or _powers_of_two(samples), key=scorer.answer_key, n_boot=n_boot, seed=seed
    )
    metrics["eval/think_rate"] = sum(bool((reasoning_of(t) or "").strip()) for t in s_texts) / len(
        s_texts
    )
    metrics["eval/greedy_format_rate"] = sum(g.format_ok) / len(g.format_ok)
    metrics["eval/greedy_length_mean"] = sum(g_len) / len(g_len)
    metrics["eval/greedy_think_rate"] = sum(
        bool((reasoning_of(t) or "").strip()) for t in g_texts
    ) / len(g_texts)
    return metrics
