"""Benchmark: rlreason's engine vs transformers' `generate` on the same Hugging Face weights.

A randomly initialised GPT-2-small-shaped model (12 layers, d=768, 12 heads, V=50257) is saved with
`save_pretrained`, loaded by both libraries, and both sample the same batch (32 rows, prompts of 32
tokens, 64 new tokens, temperature 1, top-k 50, no EOS so every row runs the full 64 tokens). By
default the 32 rows have 32 distinct prompts (no prefix sharing to exploit); `--group G` instead
samples G completions for each of 32/G prompts, the GRPO shape (transformers gets
`num_return_sequences=G`, which prefills each prompt G times; rlreason prefills it once).

Each side warms up with a 2-token run, then the two sides alternate for `--repeats` rounds (so a
burst of load on a shared machine hits both); the best time of each is reported with the ratio
transformers/rlreason. It also reports `load_pretrained` time and the
peak RSS of a fresh process that only loads the checkpoint, against the size of the weights.

Run: `rlreason-bench hf [--threads 2 --repeats 3 --group 1 --layers 12 --batch 32 --new 64]`;
`--d-model/--vocab` shrink the model. Numbers: README, performance section.
Not here: GPU timings, accuracy checks (tests/test_hf_*.py cover equality).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

LOAD_PROBE = """
import sys, time, torch
from rlreason.model.hf import load_pretrained

def rss_kib(field):
    return int(dict(l.split(':', 1) for l in open('/proc/self/status'))[field].split()[0])

open('/proc/self/clear_refs', 'w').write('5')      # reset the peak (VmHWM) to the current RSS
before = rss_kib('VmRSS')
t = time.perf_counter()
model, _ = load_pretrained(sys.argv[1], with_tokenizer=False)
seconds = time.perf_counter() - t
print(before, rss_kib('VmHWM'), seconds)
"""


def make_checkpoint(directory: Path, layers: int, d_model: int = 768, vocab: int = 50257) -> int:
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=layers,
        n_embd=d_model,
        n_head=d_model // 64,
        n_positions=1024,
        vocab_size=vocab,
        bos_token_id=None,
        eos_token_id=None,
    )
    model = transformers.GPT2LMHeadModel(config)
    model.save_pretrained(directory, max_shard_size="200MB")
    return sum(p.numel() * p.element_size() for p in model.parameters())


def alternate(fns, new: int, repeats: int) -> list[float]:
    """Best wall time of each fn(new) over `repeats` alternating rounds, after a 2-token warm-up."""
    for fn in fns:
        fn(2)  # warm-up (allocator, kernels, lazy imports)
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn(new)
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def load_memory(directory: Path) -> tuple[float, float, float]:
    """(RSS before load MiB, peak RSS MiB, seconds) of a fresh process loading `directory`."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PROBE, str(directory)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    before, peak, seconds = out.stdout.split()[-3:]
    return int(before) / 1024, int(peak) / 1024, float(seconds)


def parse_args(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--group", type=int, default=1, help="completions per prompt (batch/group distinct prompts)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads for both sides (1 avoids OpenMP stalls on a busy machine)",
    )
    args = ap.parse_args(argv)
    if args.group < 1 or args.batch % args.group:
        ap.error(f"--group {args.group} must divide --batch {args.batch}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    from rlreason.model.hf import load_pretrained
    from rlreason.sampling.engine import generate

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        weight_bytes = make_checkpoint(directory, args.layers, args.d_model, args.vocab)
        rss_before, rss_peak, load_s = load_memory(directory)
        ours, _ = load_pretrained(directory, with_tokenizer=False)
        theirs = transformers.AutoModelForCausalLM.from_pretrained(directory).eval()
    G = args.group
    prompts = torch.randint(
        0, args.vocab, (args.batch // G, args.prompt), generator=torch.Generator().manual_seed(0)
    )
    ids = prompts.tolist()

    def run_ours(new: int):
        out = generate(
            ours,
            ids,
            n=G,
            max_new_tokens=new,
            temperature=1.0,
            top_k=50,
            seed=0,
        )
        assert out.tokens.shape == (args.batch, new)

    def run_theirs(new: int):
        with torch.no_grad():
            out = theirs.generate(
                prompts,
                attention_mask=torch.ones_like(prompts),
                do_sample=True,
                temperature=1.0,
                top_k=50,
                top_p=1.0,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=0,
                num_return_sequences=G,
            )
        assert out.shape == (args.batch, args.prompt + new)

    t_ours, t_theirs = alternate([run_ours, run_theirs], args.new, args.repeats)
    tokens = args.batch * args.new
    result = {
        "model": f"gpt2-shaped random, {args.layers} layers, d={args.d_model}, V={args.vocab}, "
        f"{weight_bytes / 2**20:.0f} MiB fp32",
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "group": G,
        "prompt_len": args.prompt,
        "new_tokens": args.new,
        "rlreason_s": round(t_ours, 3),
        "transformers_s": round(t_theirs, 3),
        "rlreason_tok_s": round(tokens / t_ours, 1),
        "transformers_tok_s": round(tokens / t_theirs, 1),
        "speedup": round(t_theirs / t_ours, 2),
        "load_s": round(load_s, 2),
        "load_rss_before_mib": round(rss_before),
        "load_rss_peak_mib": round(rss_peak),
        "weights_mib": round(weight_bytes / 2**20),
        "load_rss_growth_over_weights": round((rss_peak - rss_before) / (weight_bytes / 2**20), 2),
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
