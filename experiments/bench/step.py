"""Time of one GRPO step, split into generation / reward / reference+old log-probs / update.

Run: `rlreason-bench step [--d-model 128 --layers 4 --prompts 16 --group 8 --new 64 --steps 3
--lora-rank 0 --device auto --dtype float32 --threads auto]`. Uses a random `scratch` GPT on the arithmetic env
(rewards run for real), LoRA when `--lora-rank > 0`, W&B disabled. Prints the median step and its
split over the steps after the first (warm-up). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile


def step_config(a: argparse.Namespace):
    """The Config of a scratch-model GRPO run on the arithmetic env, W&B and eval off."""
    from rlreason.config import Config

    cfg = Config()
    m = cfg.model
    m.source, m.d_model, m.n_layer, m.n_head, m.device, m.dtype = (
        "scratch",
        a.d_model,
        a.layers,
        a.heads,
        a.device,
        a.dtype,
    )
    m.max_seq_len = a.new + 64
    cfg.lora.enabled, cfg.lora.rank = a.lora_rank > 0, max(a.lora_rank, 1)
    cfg.sampling.max_new_tokens = a.new
    cfg.train.steps, cfg.train.prompts_per_step, cfg.train.progress = a.steps, a.prompts, False
    cfg.algo.group_size, cfg.algo.epochs = a.group, a.epochs
    cfg.train.threads = None if a.threads == "auto" else int(a.threads)
    cfg.optim.warmup_steps, cfg.eval.n_problems, cfg.log.wandb.mode = 0, 0, "disabled"
    cfg.log.console_every, cfg.log.samples_every = 10**9, 0
    return cfg


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="rlreason-bench step")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", default="auto", help="CPU threads, or auto (train.threads=null)")
    a = ap.parse_args(argv)
    import torch

    from experiments.train import build_trainer

    cfg = step_config(a)
    with tempfile.TemporaryDirectory() as d:
        cfg.log.run_dir = d
        trainer = build_trainer(cfg)
        rows = []
        for step in range(1, a.steps + 1):
            rows.append(trainer.train_step(step))
    keep = rows[1:] or rows
    med = {
        k: statistics.median(r[k] for r in keep)
        for k in (
            "perf/step_s",
            "perf/gen_s",
            "perf/reward_s",
            "perf/ref_s",
            "perf/train_s",
            "perf/other_s",
            "perf/tokens_per_s",
            "perf/peak_mem_mb",
        )
    }
    print(
        f"GRPO step: {a.prompts} prompts x {a.group} samples, {a.new} new tokens, "
        f"d_model {a.d_model} x {a.layers} layers, lora rank {a.lora_rank}, device {a.device}, "
        f"threads {a.threads} (ended on {torch.get_num_threads()})"
    )
    step = med["perf/step_s"]
    for k in ("gen", "reward", "ref", "train", "other"):
        v = med[f"perf/{k}_s"]
        print(f"  {k:7s} {v:8.3f} s  ({100 * v / step:5.1f}%)")
    print(
        f"  step    {step:8.3f} s; generation {med['perf/tokens_per_s']:.0f} tokens/s; "
        f"peak memory {med['perf/peak_mem_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
