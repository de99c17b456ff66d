"""Engine throughput: KV cache vs naive recomputation, prefix sharing on vs off, peak memory.

Run: `rlreason-bench engine [--batch 64] [--group 8] [--new 128] [--prompt-len 64]`.

Model: a random ~10M-parameter llama-flavour GPT (d_model 384, 6 layers, char vocabulary).
Every setting samples `batch` rows = (batch/group) prompts x `group` samples with no EOS, so all
rows generate exactly `--new` tokens. Each setting runs in a fresh subprocess so its peak RSS
(ru_maxrss) is its own; tokens/s counts generated tokens only. The naive baseline recomputes the
whole sequence every step (no cache); `--naive-new` shortens only that run when it would take too
long, and its tokens/s is then reported for that shorter length (which flatters it). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _model(seed: int = 0):
    import torch

    from rlreason.model.gpt import GPT, GPTConfig

    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=103, n_layer=6, n_head=6, d_model=384, max_seq_len=1024, flavour="llama"
    )
    return GPT(cfg).eval()


def run_one(setting: dict) -> dict:
    import torch

    from rlreason.sampling.engine import generate

    torch.set_num_threads(setting["threads"])
    model = _model()
    g = torch.Generator().manual_seed(1)
    n_prompts = setting["batch"] // setting["group"]
    prompts = [
        torch.randint(7, 103, (setting["prompt_len"],), generator=g).tolist()
        for _ in range(n_prompts)
    ]
    generate(model, prompts[:1], n=1, max_new_tokens=4, seed=0)  # warm-up
    t0 = time.perf_counter()
    r = generate(
        model,
        prompts,
        n=setting["group"],
        max_new_tokens=setting["new"],
        seed=0,
        share_prefix=setting["share_prefix"],
        use_cache=setting["use_cache"],
        compact=setting["use_cache"],
    )
    dt = time.perf_counter() - t0
    tokens = int(r.mask.sum())
    return {
        "seconds": dt,
        "tokens": tokens,
        "tokens_per_s": tokens / dt,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params_m": model.num_parameters() / 1e6,
    }


def _spawn(setting: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "experiments.bench.engine", "--child", json.dumps(setting)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="rlreason-bench engine")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--naive-new", type=int, default=None)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", default=None)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(run_one(json.loads(a.child))))
        return
    base = dict(batch=a.batch, group=a.group, new=a.new, prompt_len=a.prompt_len, threads=a.threads)
    runs = {
        "cache + prefix sharing": dict(base, use_cache=True, share_prefix=True),
        "cache, no prefix sharing": dict(base, use_cache=True, share_prefix=False),
        "naive recomputation": dict(
            base, use_cache=False, share_prefix=False, new=a.naive_new or a.new
        ),
    }
    results = {name: _spawn(s) for name, s in runs.items()}
    params = next(iter(results.values()))["params_m"]
    print(
        f"engine benchmark: {params:.1f}M-param llama GPT, batch {a.batch} "
        f"({a.batch // a.group} prompts x {a.group}), prompt {a.prompt_len}, "
        f"{a.new} new tokens, {a.threads} threads, CPU"
    )
    print(f"{'setting':28s} {'tokens':>7s} {'seconds':>8s} {'tokens/s':>9s} {'peak RSS MB':>11s}")
    for name, r in results.items():
        print(
            f"{name:28s} {r['tokens']:7d} {r['seconds']:8.2f} {r['tokens_per_s']:9.0f} "
            f"{r['peak_rss_mb']:11.0f}"
        )
    fast, naive = results["cache + prefix sharing"], results["naive recomputation"]
    print(
        f"speed-up of the cache over naive recomputation: "
        f"{fast['tokens_per_s'] / naive['tokens_per_s']:.1f}x"
    )
    print(
        f"speed-up of prefix sharing (whole call): "
        f"{results['cache, no prefix sharing']['seconds'] / fast['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
