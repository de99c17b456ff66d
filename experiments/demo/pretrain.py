"""`rlreason-pretrain`: build the weak-but-not-hopeless base model of the built-in R1-Zero demo.

`ensure_base(cfg)` returns a model directory (`save_model` layout plus `pretrain.json`) for the
config, cached under `<cache root>/<hash>` where the hash covers the whole `PretrainConfig`
(corpus, model shape, training, evaluation) and `FORMAT_VERSION`; the cache root is `cache_dir`,
else `$RLREASON_CACHE/base`, else `~/.cache/rlreason/base`. A miss builds the base: corpus
(`experiments.demo.corpus`), char tokenizer, a ~0.8M-parameter gpt2-flavour GPT seeded from `train.seed`,
`rlreason.lm_train.train_lm`, then the held-out evaluation below.

The recipe has two phases, like web pretraining followed by an annealing mix:
1. a corpus rich in worked traces (90% `<think>` traces, some sloppy or truncated; 10% direct
   answers) teaches the digit-by-digit procedure (600 steps at peak lr 3e-3);
2. a short, low-lr phase on a mix dominated by direct answers (65% direct, wrong where a carry
   is needed; 25% traces; 10% badly formatted; 60 steps at 3e-4) makes the model *prefer*
   answering directly while it keeps the procedure.
The result mostly answers directly (and wrongly on carries) but sometimes writes a trace that is
usually right: exactly what RL can amplify. A single-phase mix with 20% traces did not learn the
procedure within this budget (greedy 0%, thinking accuracy 0% after 600 steps); 90% traces alone
learn it (greedy 99.5%) but the base then always thinks (nothing left for RL to discover).

Why gpt2 (learned absolute positions) and fixed-width operands (2 digits each): every digit the
trace needs then sits at a fixed position, so the lookups are a fixed position-to-position table.
In our trials the gpt2 flavour left the "ignore the prompt" loss plateau after ~700 steps while the
llama (RoPE) flavour had not left it after 1000, and with variable-width operands neither had
after 800-1600 steps. The directory is written under a temporary name and renamed, so a crashed or
concurrent build never leaves a half-written base.

Pretraining puts the loss on the completion part of each document only (departure from "web"
pretraining, where every token counts): the prompt digits are uniformly random, so predicting
them only costs capacity and CPU time.

`evaluate_base` measures the base on the env's eval split with the engine and the rewards: greedy
and sampled (T=1) accuracy (`rewards.math`), strict format rate (`rewards.format`), the share of
completions that open `<think>`, the accuracy of thinking vs direct completions and mean
completion length. Same config → same weights (seeded init and batch order; training runs with
`TRAIN_THREADS` = 1 torch thread, restored afterwards, so the result does not depend on the core
count). One thread is also the fast choice for a model this small: on the shared 2-core machine
a step took 0.16 s with one thread and 2.6 s with two (OpenMP threads fighting other load).

Not here: RL (rl/trainer.py), Hydra (the trainer calls `ensure_base` with the default config).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from envs.base import build_env
from envs.templates import get_template
from experiments.demo.corpus import CorpusConfig, build_corpus, mix_summary
from rewards.format import is_strict_format
from rewards.math import math_reward
from rlreason.lm_train import LMTrainConfig, train_lm
from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.io import load_model, save_model
from rlreason.model.tokenizer import CharTokenizer
from rlreason.sampling.engine import generate

FORMAT_VERSION = "base-v2"  # bump when the corpus or the recipe changes meaning
TRAIN_THREADS = 1


@dataclass(frozen=True)
class ModelShape:
    flavour: str = "gpt2"
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 128  # prompt (<= 15) + the longest trace (< 75) with room to spare


@dataclass(frozen=True)
class BaseEvalConfig:
    n_problems: int = 500  # first n of the env's eval split
    samples: int = 2  # sampled completions per problem at temperature 1
    max_new_tokens: int = 96
    seed: int = 0


@dataclass(frozen=True)
class AnnealConfig:
    """Phase 2: a short, low-lr phase on a direct-answer-heavy mix (see the module docstring)."""

    steps: int = 60
    peak_lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 6
    think_fraction: float = 0.25
    direct_fraction: float = 0.65
    n_docs: int = 3840
    seed: int = 99


@dataclass(frozen=True)
class PretrainConfig:
    corpus: CorpusConfig = field(
        default_factory=lambda: CorpusConfig(
            n_docs=38_400,
            digits=2,
            min_digits=2,
            n_train=6000,
            n_eval=500,
            think_fraction=0.9,
            direct_fraction=0.1,
        )
    )
    model: ModelShape = field(default_factory=ModelShape)
    train: LMTrainConfig = field(
        default_factory=lambda: LMTrainConfig(
            steps=600,
            batch_size=32,
            peak_lr=3e-3,
            min_lr=3e-4,
            warmup_steps=50,
            weight_decay=0.1,
            grad_clip=1.0,
            seed=0,
        )
    )
    anneal: AnnealConfig | None = field(default_factory=AnnealConfig)
    eval: BaseEvalConfig = field(default_factory=BaseEvalConfig)

    def phases(self) -> list[tuple[CorpusConfig, LMTrainConfig]]:
        """(corpus, training) of each phase: the main one, then the anneal if configured."""
        out = [(self.corpus, self.train)]
        a = self.anneal
        if a is not None:
            out.append(
                (
                    replace(
                        self.corpus,
                        think_fraction=a.think_fraction,
                        direct_fraction=a.direct_fraction,
                        n_docs=a.n_docs,
                        seed=a.seed,
                    ),
                    replace(
                        self.train,
                        steps=a.steps,
                        peak_lr=a.peak_lr,
                        min_lr=a.min_lr,
                        warmup_steps=a.warmup_steps,
                    ),
                )
            )
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    def config_hash(self) -> str:
        blob = json.dumps({"version": FORMAT_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def env_kwargs(self) -> dict:
        """`build_env("arithmetic", **kwargs)` for the task this base was made for."""
        return self.corpus.env_kwargs()


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("RLREASON_CACHE"):
        return Path(os.environ["RLREASON_CACHE"]) / "base"
    return Path.home() / ".cache" / "rlreason" / "base"


def is_built(directory: Path) -> bool:
    return all(
        (directory / f).is_file()
        for f in ("pretrain.json", "model.safetensors", "config.json", "tokenizer.json")
    )


# --------------------------------------------------------------------------- evaluation


def _completion_stats(texts: list[str], scores: list[float]) -> dict:
    think = [i for i, t in enumerate(texts) if "<think>" in t]
    direct = [i for i, t in enumerate(texts) if "<think>" not in t]
    mean = lambda idx: sum(scores[i] for i in idx) / len(idx) if idx else None
    return {
        "accuracy": sum(scores) / len(scores),
        "think_share": len(think) / len(texts),
        "think_accuracy": mean(think),
        "direct_accuracy": mean(direct),
        "format_rate": sum(map(is_strict_format, texts)) / len(texts),
        "n": len(texts),
    }


def evaluate_base(
    model,
    tokenizer,
    tasks,
    *,
    temperature: float,
    samples: int = 1,
    max_new_tokens: int = 96,
    seed: int = 0,
    template: str = "tiny",
) -> dict:
    """Accuracy, format rate, think share/accuracy and mean length of completions of `tasks`."""
    tmpl = get_template(template)
    prompts = [tokenizer.encode(tmpl.render(t)) for t in tasks]
    stop_ids = [tokenizer.encode(s) for s in tmpl.stop]
    out = generate(
        model,
        prompts,
        n=samples,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        tokenizer=tokenizer,
        stop_ids=stop_ids,
    )
    expanded = [t for t in tasks for _ in range(samples)]  # prompt-major, like the engine
    scores = list(math_reward(out.texts, expanded))
    stats = _completion_stats(out.texts, scores)
    stats["mean_length"] = sum(len(c) for c in out.completion_ids) / len(out.completion_ids)
    return stats


def evaluate_default(model, tokenizer, cfg: PretrainConfig) -> dict:
    """Greedy and T=1 results on the first `cfg.eval.n_problems` eval problems."""
    tasks = list(build_env("arithmetic", **cfg.env_kwargs()).eval)[: cfg.eval.n_problems]
    e = cfg.eval
    return {
        "greedy": evaluate_base(
            model, tokenizer, tasks, temperature=0.0, max_new_tokens=e.max_new_tokens, seed=e.seed
        ),
        "sampled": evaluate_base(
            model,
            tokenizer,
            tasks,
            temperature=1.0,
            samples=e.samples,
            max_new_tokens=e.max_new_tokens,
            seed=e.seed,
        ),
    }


# --------------------------------------------------------------------------- building


def encode_corpus(docs, tokenizer) -> tuple[list[list[int]], list[int]]:
    """Token ids of every document and where its completion starts (the loss start)."""
    seqs, starts = [], []
    for d in docs:
        prompt = tokenizer.encode(d.prompt)
        seqs.append(prompt + tokenizer.encode(d.completion) + [tokenizer.eos_id])
        starts.append(len(prompt))
    return seqs, starts


def _loss_summary(losses: list[float]) -> dict:
    k = max(1, len(losses) // 20)
    tail = losses[-k:]
    return {
        "first": losses[0],
        "last": losses[-1],
        "final_mean": sum(tail) / len(tail),
        "every_50": losses[::50],
    }


def build_base(cfg: PretrainConfig, directory: str | Path, log=print) -> Path:
    """Train the base for `cfg` (each phase in turn), evaluate it, and write it to `directory`."""
    t0 = time.perf_counter()
    tokenizer = CharTokenizer()
    torch.manual_seed(cfg.train.seed)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **asdict(cfg.model)))
    losses, mixes, train_s = [], [], 0.0
    for i, (corpus, train) in enumerate(cfg.phases(), start=1):
        docs = build_corpus(corpus)
        mixes.append(mix_summary(docs))
        seqs, starts = encode_corpus(docs, tokenizer)
        longest = max(map(len, seqs))
        if longest > cfg.model.max_seq_len:
            raise ValueError(
                f"pretrain: a corpus document has {longest} tokens, more than "
                f"model.max_seq_len={cfg.model.max_seq_len}"
            )
        log(
            f"pretrain phase {i}: {len(docs)} documents, {model.num_parameters():,} parameters, "
            f"{train.steps} steps, peak lr {train.peak_lr:g}"
        )
        t1 = time.perf_counter()
        losses += _train_phase(model, seqs, starts, train, tokenizer.pad_id, log, t0)
        train_s += time.perf_counter() - t1
    t2 = time.perf_counter()
    results = evaluate_default(model, tokenizer, cfg)
    record = {
        "config": cfg.to_dict(),
        "config_hash": cfg.config_hash(),
        "format_version": FORMAT_VERSION,
        "env": {"name": "arithmetic", **cfg.env_kwargs()},
        "template": "tiny",
        "max_new_tokens": cfg.eval.max_new_tokens,
        "parameters": model.num_parameters(),
        "corpus_mix": mixes,
        "loss": _loss_summary(losses),
        "eval": results,
        "seconds": {
            "train": train_s,
            "eval": time.perf_counter() - t2,
            "total": time.perf_counter() - t0,
        },
        "torch_threads": {"train": TRAIN_THREADS, "eval": torch.get_num_threads()},
    }
    out = Path(directory)
    save_model(model, tokenizer, out)
    (out / "pretrain.json").write_text(json.dumps(record, indent=1))
    log(f"pretrain: done in {record['seconds']['total']:.0f}s; {summary_line(results)}")
    return out


def _train_phase(
    model, seqs, starts, train: LMTrainConfig, pad_id: int, log, t0: float
) -> list[float]:
    recent: list[float] = []

    def progress(step, loss, lr):
        recent[:] = (recent + [loss])[-50:]
        if step % 100 == 0 or step == train.steps - 1:
            log(
                f"  step {step:5d}  loss(mean of last {len(recent)}) "
                f"{sum(recent) / len(recent):.4f}  lr {lr:.2e}  {time.perf_counter() - t0:6.1f}s"
            )

    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return train_lm(model, seqs, train, pad_id=pad_id, loss_starts=starts, log=progress)
    finally:
        torch.set_num_threads(threads)


def summary_line(results: dict) -> str:
    g, s = results["greedy"], results["sampled"]
    pct = lambda x: "n/a" if x is None else f"{x:.1%}"
    return (
        f"greedy acc {pct(g['accuracy'])} | sampled acc {pct(s['accuracy'])}, think "
        f"{pct(s['think_share'])} (right {pct(s['think_accuracy'])}), direct right "
        f"{pct(s['direct_accuracy'])}, format {pct(s['format_rate'])}, "
        f"length {s['mean_length']:.1f}"
    )


def ensure_base(
    cfg: PretrainConfig | None = None, cache_dir=None, *, force: bool = False, log=print
) -> Path:
    """The cached base directory for `cfg` (default config if None), built first if missing."""
    cfg = cfg or PretrainConfig()
    final = cache_root(cache_dir) / cfg.config_hash()
    if is_built(final) and not force:
        return final
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    build_base(cfg, tmp, log=log)
    if final.exists():
        shutil.rmtree(final, ignore_errors=True)
    try:
        tmp.rename(final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
        if not is_built(final):
            raise
    return final


def load_base(cfg: PretrainConfig | None = None, cache_dir=None):
    """(model, tokenizer, pretrain record) of the cached base, building it if needed."""
    d = ensure_base(cfg, cache_dir)
    model, tokenizer = load_model(d)
    return model, tokenizer, json.loads((d / "pretrain.json").read_text())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="rlreason-pretrain", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, help="write the base here instead of the cache")
    p.add_argument("--steps", type=int, help="pretraining steps (default %(default)s)")
    p.add_argument("--seed", type=int, help="seed of the initial weights and batch order")
    p.add_argument("--force", action="store_true", help="rebuild even if the base exists")
    args = p.parse_args(argv)
    cfg = PretrainConfig()
    if args.steps is not None:
        cfg = replace(
            cfg,
            train=replace(
                cfg.train, steps=args.steps, warmup_steps=min(cfg.train.warmup_steps, args.steps)
            ),
        )
    if args.seed is not None:
        cfg = replace(cfg, train=replace(cfg.train, seed=args.seed))
    if args.out is None:
        path = ensure_base(cfg, force=args.force)
    elif is_built(args.out) and not args.force:
        path = args.out
    else:
        path = build_base(cfg, args.out)
    record = json.loads((path / "pretrain.json").read_text())
    print(f"base model: {path}\n{summary_line(record['eval'])}")


if __name__ == "__main__":
    main()
