"""`rlreason-bench gpu`: engine throughput, a GRPO step split and a 7B memory plan, as ONE JSON.

Default shape: Qwen2.5-0.5B (hidden 896, 24 layers, 14/2 heads, head dim 64, intermediate 4864,
vocab 151,936, qkv bias, tied embeddings) with RANDOM weights, LoRA r16 on every projection
(nonzero B), mixed precision as training runs it (bf16 base, fp32 adapters, bf16 autocast) on
CUDA; 64 prompts x 8 samples, 128 random prompt ids + 256 new tokens, no EOS (every row
generates all new tokens). Measured, 1 warm-up + `--repeats` timed runs, CUDA synchronised:
(a) `engine.generate` tokens/s with the adapters live (unmerged) and under `merged_adapters`;
(b) `transformers` `generate` (sdpa, sampling, `min_new_tokens` = new tokens) on a Qwen2 model
    built from the same config with our weights copied in (LoRA folded), unless `--skip-hf` or
    transformers is missing;
(a') every decode loop of `--engines` (`sampling.engine`: eager, static, cuda_graph, compile)
    with the adapters merged, each in its own entry (an error there is recorded, not fatal);
(c) one GRPO step on the merged rollouts: generation, `prepare` (old/ref log-probs), `update`,
    with `torch.cuda.max_memory_allocated`;
(d) `memory_plan`: an analytic plan for Qwen2.5-7B + LoRA r16 (64 prompts x 8, 512+1024 tokens):
    weights, LoRA + AdamW state, the merge backup, KV cache, decode logits, activations per
    micro-batch with and without gradient checkpointing, lm_head logits chunked or not, and
    whether each phase fits an 80 GB card (79.6 GiB usable). Activations are an estimate of the
    tensors autograd keeps (module docstring of `activation_bytes`), not a measurement.
`--tiny`: 2 layers, hidden 64, vocab 512, 4 prompts x 2, 16+16 tokens (seconds on a CPU).
Not here: multi-GPU, real checkpoints or rewards, per-kernel profiles.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial

import torch

GIB = 2**30
USABLE_80GB_GIB = 79.6  # an H100/A100 80 GB card as nvidia-smi reports it (81,559 MiB)
SHAPES = {
    "qwen2.5-0.5b": dict(
        vocab_size=151936, n_layer=24, n_head=14, n_kv_head=2, d_model=896, head_dim=64,
        d_ff=4864, tie_embeddings=True,
    ),
    "qwen2.5-7b": dict(
        vocab_size=152064, n_layer=28, n_head=28, n_kv_head=4, d_model=3584, head_dim=128,
        d_ff=18944, tie_embeddings=False,
    ),
    "tiny": dict(
        vocab_size=512, n_layer=2, n_head=4, n_kv_head=2, d_model=64, head_dim=16, d_ff=128,
        tie_embeddings=True,
    ),
}  # fmt: skip
QWEN2 = dict(flavour="llama", qkv_bias=True, qk_norm=False, rope_theta=1e6, norm_eps=1e-6)


def gpt_config(name: str, max_seq_len: int):
    from rlreason.model.gpt import GPTConfig

    return GPTConfig(**SHAPES[name], **QWEN2, max_seq_len=max_seq_len)


def counts(cfg, lora_rank: int) -> dict[str, int]:
    """Parameters of our GPT (built on the meta device) and of its LoRA adapters."""
    from rlreason.model.gpt import GPT
    from rlreason.model.lora import apply_lora, lora_modules

    with torch.device("meta"):
        model = GPT(cfg)
        total = model.num_parameters()
        apply_lora(model, rank=lora_rank, alpha=2.0 * lora_rank)
    adapted = sum(m.base.weight.numel() for _, m in lora_modules(model))
    lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": total, "lora_params": lora, "adapted_weight_params": adapted}


def activation_bytes(cfg, lora_rank: int) -> int:
    """Bytes autograd keeps per token per block (bf16 autocast, SDPA without a T x T matrix):
    bf16 q/k/v after RoPE, attention output, both norm outputs, SwiGLU's gate, silu, up and
    product, the 7 LoRA A outputs; fp32 x and normed x inside the two RMSNorms."""
    q, kv = cfg.n_head * cfg.head_dim, cfg.n_kv_head * cfg.head_dim
    bf16 = 2 * cfg.d_model + (2 * q + 2 * kv) + 4 * cfg.d_ff + 7 * lora_rank
    return 2 * bf16 + 2 * 2 * 4 * cfg.d_model


def memory_plan(
    name="qwen2.5-7b", lora_rank=16, prompts=64, samples=8, prompt_len=512, new_tokens=1024,
    micro_batch_tokens=8192, logprob_chunk=64,
) -> dict:  # fmt: skip
    """The analytic memory plan (GiB) of one GRPO step; see the module docstring."""
    cfg = gpt_config(name, prompt_len + new_tokens)
    c = counts(cfg, lora_rank)
    rows, seq = prompts * samples, prompt_len + new_tokens
    weights = 2 * c["params"]  # bf16
    lora_state = 16 * c["lora_params"]  # fp32 weights, grads, AdamW m and v
    merge_backup = 2 * c["adapted_weight_params"]  # merged_adapters' copy of the base weights
    kv = cfg.n_layer * 2 * cfg.n_kv_head * cfg.head_dim * seq * rows * 2  # bf16 K and V
    decode_logits = rows * cfg.vocab_size * 4  # one step's fp32 logits
    per_token_layer = activation_bytes(cfg, lora_rank)
    act_full = cfg.n_layer * per_token_layer * micro_batch_tokens
    act_ckpt = (cfg.n_layer * 2 * cfg.d_model + per_token_layer) * micro_batch_tokens
    mb_rows = max(micro_batch_tokens // seq, 1)
    logit_elems = 3 * mb_rows * cfg.vocab_size * 4  # logits, log-softmax, their grad (fp32)
    logits_chunked, logits_full = logit_elems * logprob_chunk, logit_elems * new_tokens
    gen = weights + lora_state + merge_backup + kv + decode_logits
    train = {
        "no_ckpt": weights + lora_state + act_full + logits_chunked,
        "ckpt": weights + lora_state + act_ckpt + logits_chunked,
    }
    gib = lambda b: round(b / GIB, 3)
    return {
        "shape": name,
        "config": {"lora_rank": lora_rank, "prompts": prompts, "samples": samples, "rows": rows,
                   "prompt_len": prompt_len, "new_tokens": new_tokens,
                   "micro_batch_tokens": micro_batch_tokens, "logprob_chunk": logprob_chunk},
        **c,
        "bytes": {"weights_bf16": weights, "kv_cache": kv},
        "gib": {
            "weights_bf16": gib(weights), "lora_params_grads_adamw_fp32": gib(lora_state),
            "merge_backup_bf16": gib(merge_backup), "kv_cache_bf16": gib(kv),
            "decode_logits_fp32": gib(decode_logits),
            "activations_per_micro_batch": gib(act_full),
            "activations_per_micro_batch_grad_ckpt": gib(act_ckpt),
            "logits_chunked": gib(logits_chunked), "logits_unchunked": gib(logits_full),
            "generation_peak": gib(gen), "generation_peak_merge_backup_on_cpu": gib(gen - merge_backup),
            "train_peak": gib(train["no_ckpt"]), "train_peak_grad_ckpt": gib(train["ckpt"]),
        },
        "fits_80gb": {
            "generation": gen / GIB <= USABLE_80GB_GIB,
            "generation_merge_backup_on_cpu": (gen - merge_backup) / GIB <= USABLE_80GB_GIB,
            "train": train["no_ckpt"] / GIB <= USABLE_80GB_GIB,
            "train_grad_ckpt": train["ckpt"] / GIB <= USABLE_80GB_GIB,
        },
        "usable_80gb_gib": USABLE_80GB_GIB,
    }  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def build_model(a, device: torch.device, dtype: torch.dtype):
    from rlreason.model.gpt import GPT
    from rlreason.model.lora import apply_lora, lora_modules
    from rlreason.model.precision import mixed_precision

    torch.manual_seed(0)
    with torch.device(device):
        model = GPT(gpt_config(a.shape, a.prompt_len + a.new_tokens))
        apply_lora(model, rank=a.lora_rank, alpha=2.0 * a.lora_rank)
        for _, m in lora_modules(model):
            torch.nn.init.normal_(m.lora_B.weight, std=1e-3)  # a live adapter, not B = 0
    return mixed_precision(model, dtype).eval()


def engine_runs(model, prompts, a, device) -> tuple[dict, object]:
    from rlreason.model.lora import merged_adapters
    from rlreason.sampling.engine import generate

    kw = dict(n=a.samples, max_new_tokens=a.new_tokens, eos_id=[], seed=0)
    generate(model, prompts, **{**kw, "max_new_tokens": min(8, a.new_tokens)})  # warm-up
    out, last = {}, None
    for label, merge in (("lora_unmerged", False), ("lora_merged", True)):
        best = None
        if merge and device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(a.repeats):
            if merge:
                with merged_adapters(model):
                    last, dt = timed(lambda: generate(model, prompts, **kw), device)
            else:
                last, dt = timed(lambda: generate(model, prompts, **kw), device)
            best = dt if best is None else min(best, dt)
        tokens = int(last.mask.sum())
        out[label] = {"seconds": best, "tokens": tokens, "tokens_per_s": tokens / best}
    out["merged_speedup"] = out["lora_unmerged"]["seconds"] / out["lora_merged"]["seconds"]
    if device.type == "cuda":
        out["lora_merged"]["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
    return out, last


def engine_variants(model, prompts, a, device) -> dict:
    """Tokens/s of every decode loop in `a.engines` (sampling.engine: eager, static, cuda_graph,
    compile) with the adapters merged; one that fails records its error and the rest still run."""
    from rlreason.model.lora import merged_adapters
    from rlreason.sampling.engine import ENGINES, generate

    kw = dict(n=a.samples, max_new_tokens=a.new_tokens, eos_id=[], seed=0)
    out = {}
    for name in a.engines:
        try:
            opts = ENGINES[name]
            with merged_adapters(model):
                generate(model, prompts, **{**kw, **opts})  # warm-up (and capture / compile)
                runs = [timed(lambda: generate(model, prompts, **kw, **opts), device)]
                runs += [timed(lambda: generate(model, prompts, **kw, **opts), device)
                         for _ in range(a.repeats - 1)]  # fmt: skip
            best, tokens = min(dt for _, dt in runs), int(runs[0][0].mask.sum())
            out[name] = {"seconds": best, "tokens": tokens, "tokens_per_s": tokens / best}
        except Exception as e:  # a GPU run must still print the others
            out[name] = {"status": "error", "error": f"{type(e).__name__}: {e}"}
    return out


def grpo_step(model, rollouts, gen_s: float, a, device) -> dict:
    """`prepare` and `update` of the real trainer on the rollouts, random rewards."""
    from rlreason.config import Config
    from rlreason.optim import build_adamw
    from rlreason.rl.advantages import get_estimator
    from rlreason.rl.batch import RolloutBatch
    from rlreason.rl.update import Forward, Policy, prepare, update

    cfg = Config()
    cfg.algo.group_size, cfg.algo.micro_batch_tokens = a.samples, a.micro_batch_tokens
    B = len(rollouts)
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(B, generator=g).to(device)  # (B,)
    batch = RolloutBatch(
        rollouts.prompt_ids, rollouts.tokens, rollouts.mask, rollouts.logprobs, rewards,
        rollouts.finish_reasons, [""] * B, [None] * B, {},
    )  # fmt: skip
    policy = Policy(model)
    fwd = Forward(0, 1.0, a.new_tokens, a.micro_batch_tokens, cfg.algo.logprob_chunk)
    opt = build_adamw(model, 1e-5, 0.0)
    model.gradient_checkpointing = a.grad_ckpt
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    prep, ref_s = timed(lambda: prepare(policy, batch, cfg.algo, fwd), device)
    batch.adv, batch.returns = get_estimator("grpo")(rewards, batch.mask, None, cfg.algo)
    step = partial(update, policy, opt, batch, prep, cfg.algo, cfg.optim, fwd, step=1, seed=0)
    stats, update_s = timed(step, device)
    model.gradient_checkpointing = False
    out = {
        "gen_s": gen_s, "ref_s": ref_s, "update_s": update_s, "step_s": gen_s + ref_s + update_s,
        "rows": B, "micro_batch_tokens": a.micro_batch_tokens,
        "gradient_checkpointing": a.grad_ckpt, "loss": float(stats["loss/total"]),
    }  # fmt: skip
    if device.type == "cuda":
        out["max_memory_allocated_gib_prepare_update"] = torch.cuda.max_memory_allocated() / GIB
    del opt
    return out


def hf_run(model, prompts, a, device, dtype) -> dict:
    """transformers `generate` on a Qwen2 model holding our weights (LoRA folded)."""
    try:
        import transformers
    except ImportError:
        return {"status": "skipped", "reason": "transformers is not importable"}
    from rlreason.model.hf.arch import ARCHS, join
    from rlreason.model.hf.export import hf_config_of, our_tensor

    conf = transformers.Qwen2Config(**hf_config_of(model))
    conf._attn_implementation = "sdpa"
    with torch.device(device):
        hf = transformers.AutoModelForCausalLM.from_config(conf).to(dtype).eval()
    state = hf.state_dict()
    with torch.no_grad():
        for link in ARCHS["qwen2"].links(model.config):
            state[link.hf].copy_(join(link, [our_tensor(model, n) for n in link.ours]))
    ids = torch.tensor(prompts, device=device)  # (P, L) equal lengths: no padding
    kw = dict(
        attention_mask=torch.ones_like(ids), do_sample=True, num_return_sequences=a.samples,
        max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, temperature=1.0, top_k=0,
        top_p=1.0, pad_token_id=0, eos_token_id=None,
    )  # fmt: skip
    with torch.no_grad():
        hf.generate(ids, **{**kw, "max_new_tokens": 8, "min_new_tokens": 8})  # warm-up
        best = None
        for _ in range(a.repeats):
            out, dt = timed(partial(hf.generate, ids, **kw), device)
            best = dt if best is None else min(best, dt)
    tokens = int((out.shape[1] - ids.shape[1]) * out.shape[0])
    del hf, state
    return {
        "status": "ok", "weights": "ours copied in (LoRA folded)", "attn_implementation": "sdpa",
        "seconds": best, "tokens": tokens, "tokens_per_s": tokens / best,
    }  # fmt: skip


def parse(argv):
    ap = argparse.ArgumentParser(prog="rlreason-bench gpu", description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--prompts", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--prompt-len", type=int, default=None)
    ap.add_argument("--new-tokens", type=int, default=None)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--micro-batch-tokens", type=int, default=8192)
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing in (c)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs after the warm-up")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default=None)
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument(
        "--engines",
        default=None,
        help="comma-separated sampling.engine names (default: eager,static on CPU; "
        "eager,static,cuda_graph,compile on CUDA)",
    )
    ap.add_argument("--out", default=None, help="also write the JSON to this file")
    a = ap.parse_args(argv)
    a.device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    a.shape = "tiny" if a.tiny else "qwen2.5-0.5b"
    defaults = (4, 2, 16, 16) if a.tiny else (64, 8, 128, 256)
    for k, v in zip(("prompts", "samples", "prompt_len", "new_tokens"), defaults):
        setattr(a, k, getattr(a, k) or v)
    a.dtype = a.dtype or ("bfloat16" if a.device == "cuda" else "float32")
    cuda = "eager,static,cuda_graph,compile" if a.device == "cuda" else "eager,static"
    a.engines = [e for e in (a.engines or cuda).split(",") if e]
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    device, dtype = torch.device(a.device), getattr(torch, a.dtype)
    try:
        import transformers

        hf_version = transformers.__version__
    except ImportError:
        hf_version = None
    model = build_model(a, device, dtype)
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, model.config.vocab_size, (a.prompts, a.prompt_len), generator=g)
    prompts = prompts.tolist()  # P lists of prompt_len ids
    result = {
        "bench": "gpu",
        "versions": {"torch": torch.__version__, "transformers": hf_version,
                     "cuda": torch.version.cuda},
        "device": {"type": device.type, "name": torch.cuda.get_device_name(device)
                   if device.type == "cuda" else "cpu"},
        "dtype": {"compute": a.dtype, "base_weights": a.dtype, "adapters": "float32"
                  if dtype is torch.bfloat16 else a.dtype},
        "shape": {"name": a.shape, **SHAPES[a.shape], **QWEN2, "lora_rank": a.lora_rank,
                  "prompts": a.prompts, "samples": a.samples, "rows": a.prompts * a.samples,
                  "prompt_len": a.prompt_len, "new_tokens": a.new_tokens,
                  "params": model.num_parameters()},
    }  # fmt: skip
    result["engine"], rollouts = engine_runs(model, prompts, a, device)
    result["engines"] = engine_variants(model, prompts, a, device)
    result["grpo_step"] = grpo_step(
        model, rollouts, result["engine"]["lora_merged"]["seconds"], a, device
    )
    del rollouts
    if a.skip_hf:
        result["hf"] = {"status": "skipped", "reason": "--skip-hf"}
    else:
        try:
            result["hf"] = hf_run(model, prompts, a, device, dtype)
        except Exception as e:  # a GPU run must still print the rest
            result["hf"] = {"status": "error", "error": f"{type(e).__name__}: {e}"}
    result["memory_plan_7b"] = memory_plan(micro_batch_tokens=a.micro_batch_tokens)
    text = json.dumps(result, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
