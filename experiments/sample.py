"""`rlreason-sample`: rejection sampling of reasoning traces from a frozen teacher, as SFT data.

`rlreason-sample teacher.source=run teacher.path=<run dir>` loads the teacher (experiments/
teacher.py: a run's latest checkpoint, a built-in base, a local or HF directory, an optional
adapter), renders the first `sample.n_problems` tasks of the env's `sample.split` with the env's
template and draws `sample.n` completions per prompt at `sampling.*` (temperature, top_k, top_p,
max_new_tokens) with the template's stop strings, in chunks of `sample.batch_prompts` prompts;
the chunk starting at prompt i is seeded `seed + i` (so `sample.batch_prompts` is part of the
draw), and the same config writes the same file.
The scorer (`env.*`, `reward.*`, `reward_gate`, as in training) judges every completion, and a
completion is accepted when every `sample.accept` condition holds (an empty list accepts all):

- `correct`: the scorer's verdict (the env's accuracy reward at 1);
- `format`: the scorer's `format_ok`, the strict `<think>…</think><answer>…</answer>` shape;
- any other reward component of the scorer (`math`, `language`, ...): its value is > 0.

Accepted completions are deduplicated per prompt (exact text once surrounding whitespace is
stripped; a blank one is never written), at most `sample.max_per_prompt` kept per prompt (first
drawn first), and written atomically (a temporary file renamed) to `sample.out` (default
`<run dir>/samples.jsonl`), one JSON line per trace:
`{"prompt", "completion", "task_id", "answer", "rewards", "teacher", "sampling"}`.

`prompt` + `completion` is supervised data as is (`rlreason-sft sft.data=FILE`): `prompt` is the
exact rendered text the teacher was conditioned on, so a prefilled template's opening `<think>`
belongs to the prompt and the completion starts inside the reasoning (it is scored that way too).
A completion that ended on a stop string ends with it (the engine keeps the stopping token; any
text that token carried past the stop string is cut), so the target closes its `</answer>`; EOS
is not part of the text (`sft.add_eos` appends it). `task_id` is the task's `meta["id"]`, else
`<split>:<index>`; `rewards` holds every reward component's value; `teacher` is the provenance
(source, path, checkpoint, step, dtype, adapter) and `sampling` the settings (n, temperature,
top_k, top_p, max_new_tokens, seed). The run directory (`run_directory`) gets `config.yaml` and
`sample.json`, the summary `run` returns (counts, rates, tokens, timing).

Not here: loading the teacher (experiments/teacher.py), SFT (experiments/sft.py), the rewards.
One process: data-parallel sampling is not supported.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from experiments.build import build_env, build_scorer, run_directory
from experiments.teacher import load_teacher
from experiments.train import bind_render, hydra_app, set_cpu_threads
from rlreason.config import Config, ConfigError, validate
from rlreason.sampling.engine import generate

SPLITS = ("train", "eval")
# accept conditions with their own meaning; every other name is a reward component (> 0)
NAMED_TESTS: dict[str, Callable] = {
    "correct": lambda v, i: bool(v.correct[i]),
    "format": lambda v, i: bool(v.format_ok[i]),
}


@dataclass
class Draws:
    """The completions of all prompts, prompt-major (`n` per prompt)."""

    texts: list[str]
    lengths: list[int]  # completion tokens (the stopping token included)
    finish: list[str]  # eos | stop | length
    seconds: float = 0.0


# --------------------------------------------------------------------------- checks


def check_sample(cfg: Config) -> None:
    """`sample.*` and a set teacher, before anything loads."""
    s = cfg.sample
    rules = (
        (s.n >= 1, f"sample.n={s.n}: must be >= 1"),
        (s.split in SPLITS, f"sample.split={s.split!r}: choose one of {list(SPLITS)}"),
        (
            s.n_problems is None or s.n_problems >= 1,
            f"sample.n_problems={s.n_problems}: must be >= 1, or null for the whole split",
        ),
        (
            s.max_per_prompt is None or s.max_per_prompt >= 1,
            f"sample.max_per_prompt={s.max_per_prompt}: must be >= 1, or null for no cap",
        ),
        (s.batch_prompts >= 1, f"sample.batch_prompts={s.batch_prompts}: must be >= 1"),
        (
            cfg.teacher.source != "none",
            "teacher.source=none: set the teacher to sample from, e.g. teacher.source=run "
            "teacher.path=<run dir> (or teacher.source=base, or local/hf with teacher.path)",
        ),
    )
    errors = [msg for ok, msg in rules if not ok]
    if errors:
        raise ConfigError("invalid sample configuration:\n  - " + "\n  - ".join(errors))


def reward_components(scorer) -> list[str]:
    """The scorer's reward component names (its ComposedReward's)."""
    return list(getattr(scorer.reward_fn, "fns", {}))


def accept_tests(accept: Sequence[str], components: Sequence[str]) -> dict[str, Callable]:
    """{condition: test(verdicts, i) -> bool} for `sample.accept`; unknown names are an error."""
    known = dict(NAMED_TESTS)
    known.update({c: _positive(c) for c in components if c not in NAMED_TESTS})
    unknown = [a for a in accept if a not in known]
    if unknown:
        raise ConfigError(
            f"sample.accept={list(accept)}: unknown {unknown}; choose from {sorted(known)} "
            "(correct: the accuracy verdict, format: strict format, a reward component: > 0)"
        )
    return {a: known[a] for a in dict.fromkeys(accept)}


def _positive(name: str) -> Callable:
    return lambda v, i: v.components[name][i] > 0


def pick_tasks(cfg: Config, env) -> list:
    """The first `sample.n_problems` tasks of `sample.split` (all when null)."""
    s = cfg.sample
    tasks = list(getattr(env, s.split))[: s.n_problems]
    if not tasks:
        raise ConfigError(f"env={cfg.env.name}: the {s.split} split is empty (sample.split)")
    return tasks


def check_lengths(prompt_ids: list[list[int]], tasks: list, max_new: int, model) -> None:
    """Every prompt plus `sampling.max_new_tokens` fits the teacher's context."""
    limit = getattr(getattr(model, "config", None), "max_seq_len", None)
    if limit is None:
        return
    n, i = max((len(p), i) for i, p in enumerate(prompt_ids))
    if n + max_new > limit:
        raise ConfigError(
            f"the longest prompt ({n} tokens, {tasks[i].prompt[:40]!r}) plus sampling."
            f"max_new_tokens={max_new} exceeds the teacher's context of {limit}: lower "
            "sampling.max_new_tokens or sample.n_problems, or use a shorter template"
        )


# --------------------------------------------------------------------------- sampling


def close_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to the end of its first stop string (what a row that stopped on one keeps)."""
    ends = [text.find(s) + len(s) for s in stops if s and s in text]
    return text[: min(ends)] if ends else text


def draw(model, tokenizer, prompt_ids, *, n, sampling, stops, seed, batch_prompts) -> Draws:
    """`n` completions per prompt, chunk by chunk; the chunk at prompt i is seeded `seed + i`."""
    d, t0 = Draws([], [], []), time.perf_counter()
    for i in range(0, len(prompt_ids), batch_prompts):
        r = generate(
            model,
            prompt_ids[i : i + batch_prompts],
            n=n,
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            stop_strings=stops,
            seed=seed + i,
            tokenizer=tokenizer,
        )
        d.texts += [
            close_at_stop(t, stops) if f == "stop" else t for t, f in zip(r.texts, r.finish_reasons)
        ]
        d.lengths += [len(c) for c in r.completion_ids]
        d.finish += list(r.finish_reasons)
    d.seconds = time.perf_counter() - t0
    return d


def select(texts: list[str], passed: list[bool], n: int, cap: int | None) -> list[list[int]]:
    """Per prompt, the indices kept: accepted, non-blank, the first of their stripped text, at
    most `cap`, in drawn order."""
    kept = []
    for p in range(len(texts) // n):
        seen, mine = set(), []
        for i in range(p * n, (p + 1) * n):
            key = texts[i].strip()
            if passed[i] and key and key not in seen and (cap is None or len(mine) < cap):
                seen.add(key)
                mine.append(i)
        kept.append(mine)
    return kept


# --------------------------------------------------------------------------- output


def teacher_record(cfg: Config, info: dict) -> dict:
    """The provenance each line carries: where the teacher came from and in which dtype."""
    return {
        "source": info["source"],
        "path": cfg.teacher.path,
        "checkpoint": info.get("checkpoint"),
        "step": info.get("step"),
        "dtype": info["dtype"],
        "adapter": info.get("adapter"),
    }


def sampling_record(cfg: Config) -> dict:
    s = cfg.sampling
    return {
        "n": cfg.sample.n,
        "temperature": s.temperature,
        "top_k": s.top_k,
        "top_p": s.top_p,
        "max_new_tokens": s.max_new_tokens,
        "seed": cfg.seed,
    }


def task_id(task, split: str, index: int) -> str:
    tid = (task.meta or {}).get("id")
    return str(tid) if tid is not None else f"{split}:{index}"


def make_lines(cfg, tasks, prompts, draws, verdicts, kept, teacher) -> list[dict]:
    sampling, split = sampling_record(cfg), cfg.sample.split
    return [
        {
            "prompt": prompts[p],
            "completion": draws.texts[i],
            "task_id": task_id(tasks[p], split, p),
            "answer": None if tasks[p].answer is None else str(tasks[p].answer),
            "rewards": {c: float(v[i]) for c, v in verdicts.components.items()},
            "teacher": teacher,
            "sampling": sampling,
        }
        for p, rows in enumerate(kept)
        for i in rows
    ]


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file next to `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summarize(cfg, out, run_dir, info, draws, tests, passes, kept, seconds) -> dict:
    drawn, accepted = len(draws.texts), sum(map(all, passes))
    written = sum(len(k) for k in kept)
    return {
        "out": str(out),
        "run_dir": str(run_dir),
        "teacher": info,
        "split": cfg.sample.split,
        "accept": list(tests),
        "n": cfg.sample.n,
        "n_prompts": len(kept),
        "drawn": drawn,
        "accepted": accepted,
        "written": written,
        "prompts_with_any": sum(1 for k in kept if k),
        "acceptance_rate": accepted / drawn,
        "pass_rates": {a: sum(p[j] for p in passes) / drawn for j, a in enumerate(tests)},
        "finish_reasons": dict(sorted(Counter(draws.finish).items())),
        "generated_tokens": sum(draws.lengths),
        "generate_seconds": draws.seconds,
        "samples_per_s": drawn / max(draws.seconds, 1e-9),
        "seconds": seconds,
    }


# --------------------------------------------------------------------------- the job


def prepare(cfg: Config):
    """Everything checkable without the teacher: (env, template, tasks, scorer, accept tests)."""
    from experiments.schema import configured_rewards

    check_sample(cfg)
    validate(cfg)
    cfg.reward = configured_rewards(cfg.reward)
    env, template = build_env(cfg)
    tasks = pick_tasks(cfg, env)
    scorer = build_scorer(cfg, env, template)
    return env, template, tasks, scorer, accept_tests(cfg.sample.accept, reward_components(scorer))


def load(cfg: Config, template, tasks: list):
    """(teacher, tokenizer, info, rendered prompts, prompt ids), checked against its context."""
    torch.manual_seed(cfg.seed)
    model, tokenizer, info = load_teacher(cfg.teacher, cfg.model)
    if info.get("env") not in (None, cfg.env.name):
        print(f"[rlreason] note: the teacher was trained on env={info['env']}, not {cfg.env.name}")
    set_cpu_threads(cfg.train.threads)
    render = bind_render(template, tokenizer, tasks[0])
    prompts = [render(t) for t in tasks]
    encode = getattr(tokenizer, "encode_prompt", tokenizer.encode)
    prompt_ids = [encode(p) for p in prompts]
    check_lengths(prompt_ids, tasks, cfg.sampling.max_new_tokens, model)
    return model, tokenizer, info, prompts, prompt_ids


def write_lines(cfg: Config, arm: str, lines: list[dict]) -> tuple[Path, Path]:
    """(run dir, samples file): config.yaml in the run directory, the lines where they go."""
    from omegaconf import OmegaConf

    run_dir = run_directory(cfg, arm)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    out = Path(cfg.sample.out) if cfg.sample.out else run_dir / "samples.jsonl"
    write_atomic(out, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    return run_dir, out


def run(cfg: Config, arm: str = "") -> dict:
    """The `sample` job: draw, score, filter and write the traces; returns `sample.json`."""
    t0, s = time.perf_counter(), cfg.sample
    cfg.job = "sample"  # config.yaml records the job that ran
    env, template, tasks, scorer, tests = prepare(cfg)
    model, tokenizer, info, prompts, prompt_ids = load(cfg, template, tasks)
    stops = template.stop_strings(tokenizer)
    draws = draw(
        model,
        tokenizer,
        prompt_ids,
        n=s.n,
        sampling=cfg.sampling,
        stops=stops,
        seed=cfg.seed,
        batch_prompts=s.batch_prompts,
    )
    verdicts = scorer(draws.texts, [t for t in tasks for _ in range(s.n)])
    passes = [[test(verdicts, i) for test in tests.values()] for i in range(len(draws.texts))]
    kept = select(draws.texts, [all(p) for p in passes], s.n, s.max_per_prompt)
    lines = make_lines(cfg, tasks, prompts, draws, verdicts, kept, teacher_record(cfg, info))
    run_dir, out = write_lines(cfg, arm, lines)
    summary = summarize(
        cfg, out, run_dir, info, draws, tests, passes, kept, time.perf_counter() - t0
    )
    write_atomic(run_dir / "sample.json", json.dumps(summary, indent=1) + "\n")
    print(
        f"[rlreason] sample: {summary['drawn']} drawn from {summary['n_prompts']} prompts, "
        f"{summary['accepted']} accepted ({summary['acceptance_rate']:.1%}), "
        f"{summary['written']} written for {summary['prompts_with_any']} prompts -> {out} "
        f"({summary['samples_per_s']:.1f} samples/s, {summary['seconds']:.1f} s)"
    )
    return summary


def main() -> None:
    hydra_app("sample", job="sample")


if __name__ == "__main__":
    main()
