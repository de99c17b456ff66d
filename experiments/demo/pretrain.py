"""`rlreason-pretrain`: build the weak-but-not-hopeless base model of the built-in R1-Zero demo.

`ensure_base(cfg)` returns a model directory (`save_model` layout plus `pretrain.json`), cached
under `<cache root>/<hash of PretrainConfig and FORMAT_VERSION>`; the root is `cache_dir`, else
`$RLREASON_CACHE/base`, else `~/.cache/rlreason/base`. A miss builds it: corpus
(`experiments.demo.corpus`), char tokenizer, a ~0.8M-parameter gpt2-flavour GPT, two phases of
`rlreason.lm_train.train_lm` (trace-rich, then a short direct-answer-heavy anneal: see
`PretrainConfig`), then `experiments.demo.base_eval`. The result mostly answers directly but
sometimes writes a trace that is usually right: what RL can amplify. gpt2 positions and
fixed-width operands put every digit a trace needs at a fixed position, which this model learns
within budget. The loss covers completions only (the prompt digits are uniformly random). The
build is written under a temporary name and renamed, so a crash never leaves a half-written base.
Same config, same weights: seeded init and order, `TRAIN_THREADS` = 1 torch thread.

Not here: RL (`rlreason.rl.trainer`), Hydra (the trainer calls `ensure_base`).
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

from experiments.demo.base_eval import (
    BaseEvalConfig,
    evaluate_default,
    summary_line,
)
from experiments.demo.corpus import CorpusConfig, build_corpus, mix_summary
from rlreason.lm_train import LMTrainConfig, train_lm
from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.io import load_model, save_model
from rlreason.model.tokenizer import CharTokenizer

FORMAT_VERSION = "base-v2"  # bump when the corpus or the recipe changes meaning
TRAIN_THREADS = 1  # result independent of the core count; also the fastest for a model this small


@dataclass(frozen=True)
class ModelShape:
    flavour: str = "gpt2"
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 128  # prompt (<= 15) + the longest trace (< 75) with room to spare


@dataclass(frozen=True)
class AnnealConfig:
    """Phase 2: a short, low-lr phase on a direct-answer-heavy mix (see `PretrainConfig`)."""

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
    """The base recipe, in two phases like web pretraining followed by an annealing mix.

    1. A corpus rich in worked traces (90% `<think>` traces, some sloppy or truncated; 10% direct
       answers) teaches the digit-by-digit procedure (600 steps at peak lr 3e-3).
    2. A short low-lr anneal on a mix dominated by direct answers (65% direct, wrong where a carry
       is needed; 25% traces; 10% badly formatted; 60 steps at 3e-4) makes the model prefer
       answering directly while it keeps the procedure.
    One phase cannot do both: with 20% traces the procedure is not learnt within this budget,
    and with 90% traces alone the base always thinks, leaving RL nothing to discover.
    """

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


def small_base_config() -> PretrainConfig:
    """The base recipe at half the layers: `model.source=base_small`, the routes' student."""
    base = PretrainConfig()
    return replace(base, model=replace(base.model, n_layer=base.model.n_layer // 2))


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
    results = evaluate_default(model, tokenizer, cfg.env_kwargs(), cfg.eval)
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
