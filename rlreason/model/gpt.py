"""The policy: one decoder-only transformer with two block flavours chosen by config.

- `gpt2`: learned absolute positions, LayerNorm, GELU (tanh) MLP, biases everywhere, tied embeddings.
- `llama`: RoPE (configurable theta), RMSNorm, SwiGLU MLP, grouped-query attention, optional q/k/v
  bias (Qwen2), optional per-head q/k RMSNorm (Qwen3), optional tied embeddings.

Attention goes through `F.scaled_dot_product_attention`, except a one-token step on a KV cache
(decoding), which uses `decode_attention`: two matmuls on the strided cache with a float mask
built once per step (faster than SDPA there, ~1.3x per call on CPU). Both flavours use separate
`q_proj`, `k_proj`, `v_proj`, `o_proj` (and `up_proj`/`down_proj`, plus `gate_proj` for SwiGLU)
so LoRA targets and checkpoint names are the same across flavours.

`forward(ids, kv_cache=None, positions=None, key_mask=None)` returns logits. Without a cache and
without `key_mask` it is plain causal attention (right padding is harmless). With a `KVCache`,
keys/values are written at the cache's current length and queries attend to every valid cached key
at or before their own slot; `key_mask` marks which slots hold real tokens (left padding) and
`positions` gives each token's position id, so padding changes neither attention nor positions.

Padding without a dense mask: with `model.attn_padding = "compact"` a cache-free forward with
`key_mask` (training log-probs) moves real tokens to the front and runs plain causal SDPA (no
(B, 1, T, S) mask; flash-eligible on CUDA), equal on real tokens to the default "mask" path, the
reference (attention.py). A cached prefill without `key_mask` (right padding) is plain causal too.
A cache with `attends = True` (sampling/kv.py) does its own writes, masks and attention.

Mixed precision: with `compute_dtype` set (`precision.mixed_precision`), `hidden` and `forward`
run under `torch.autocast` to that dtype, so fp32 trainable weights compute in bf16/fp16.

Not here: sampling (engine.py), LoRA (lora.py), checkpoint import (hf/load.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from rlreason.model import precision
from rlreason.model.attention import (  # decode_attention, additive_mask: re-exported
    additive_mask,
    attention_mask,
    compact_order,
    decode_attention,
    sdpa,
)

_attention_mask = attention_mask  # the old private name

# The dtypes a model can be built or loaded in (`model.dtype`).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FLAVOURS = ("gpt2", "llama")


@dataclass
class GPTConfig:
    vocab_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 512
    flavour: str = "llama"
    n_kv_head: int | None = None  # None → n_head (no GQA)
    head_dim: int | None = None  # None → d_model // n_head (Qwen3 sets it explicitly)
    d_ff: int | None = None  # None → 4*d_model (gpt2) or SwiGLU's 8/3*d_model rounded
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    qkv_bias: bool | None = None  # None → True for gpt2, False for llama
    qk_norm: bool = False
    tie_embeddings: bool | None = None  # None → True for gpt2, False for llama
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError(f"GPTConfig.flavour={self.flavour!r}; expected one of {FLAVOURS}")
        gpt2 = self.flavour == "gpt2"
        self.n_kv_head = self.n_kv_head or self.n_head
        self.head_dim = self.head_dim or self.d_model // self.n_head
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model if gpt2 else 64 * math.ceil(8 * self.d_model / 3 / 64)
        if self.qkv_bias is None:
            self.qkv_bias = gpt2
        if self.tie_embeddings is None:
            self.tie_embeddings = gpt2
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"GPTConfig: n_head={self.n_head} not divisible by n_kv_head={self.n_kv_head}"
            )
        if gpt2 and self.head_dim * self.n_head != self.d_model:
            raise ValueError(
                f"GPTConfig: d_model={self.d_model} not divisible by n_head={self.n_head}"
            )
        if gpt2 and (self.qk_norm or self.n_kv_head != self.n_head):
            raise ValueError("GPTConfig: qk_norm and grouped-query attention need flavour='llama'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_inv_freq(cfg: GPTConfig) -> torch.Tensor:
    """Inverse frequencies (head_dim/2,), with the `rope_scaling` types real checkpoints use."""
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    scaling = cfg.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv.float()
    if kind == "linear":
        return (inv / float(scaling["factor"])).float()
    if kind == "llama3":
        factor = float(scaling["factor"])
        lo, hi = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_ctx = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        smooth = (old_ctx / wavelen - lo) / (hi - lo)
        scaled = torch.where(wavelen > old_ctx / lo, inv / factor, inv)
        mid = (wavelen <= old_ctx / lo) & (wavelen >= old_ctx / hi)
        return torch.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled).float()
    raise ValueError(
        f"GPTConfig.rope_scaling: unsupported rope type {kind!r} "
        "(supported: default, linear, llama3)"
    )


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, H, T, D); cos/sin (B, 1, T, D) — rotate-half convention (first/second halves paired)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        H, Hkv, D, C = cfg.n_head, cfg.n_kv_head, cfg.head_dim, cfg.d_model
        self.q_proj = nn.Linear(C, H * D, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(C, Hkv * D, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(C, Hkv * D, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(H * D, C, bias=cfg.flavour == "gpt2")
        self.q_norm = RMSNorm(D, cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(D, cfg.norm_eps) if cfg.qk_norm else None

    def forward(self, x, rope, layer: int, kv_cache, attn_mask):
        B, T, _ = x.shape
        H, Hkv, D = self.cfg.n_head, self.cfg.n_kv_head, self.cfg.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, Hkv, D).transpose(1, 2)  # (B, Hkv, T, D)
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)  # (B, Hkv, T, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if getattr(kv_cache, "attends", False):  # a cache with its own kernel (sampling/kv.py)
            y = kv_cache.attend(layer, q, k, v, attn_mask)  # (B, H, T, D)
        elif kv_cache is not None and T == 1:
            k, v = kv_cache.write(layer, k, v)  # (B, Hkv, S, D)
            y = decode_attention(q, k, v, attn_mask)  # (B, H, 1, D)
        else:
            if kv_cache is not None:
                k, v = kv_cache.write(layer, k, v)  # (B, Hkv, S, D)
            y = sdpa(q, k, v, attn_mask, is_causal=attn_mask is None)  # (B, H, T, D)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * D))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        bias = cfg.flavour == "gpt2"
        self.swiglu = cfg.flavour == "llama"
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False) if self.swiglu else None
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=bias)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=bias)

    def forward(self, x):
        if self.swiglu:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(F.gelu(self.up_proj(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        norm = (
            (lambda: nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps))
            if cfg.flavour == "gpt2"
            else (lambda: RMSNorm(cfg.d_model, cfg.norm_eps))
        )
        self.attn_norm, self.attn = norm(), Attention(cfg)
        self.mlp_norm, self.mlp = norm(), MLP(cfg)

    def forward(self, x, rope, layer, kv_cache, attn_mask):
        x = x + self.attn(self.attn_norm(x), rope, layer, kv_cache, attn_mask)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = cfg = config
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.flavour == "gpt2" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.final_norm = (
            nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
            if cfg.flavour == "gpt2"
            else RMSNorm(cfg.d_model, cfg.norm_eps)
        )
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        if cfg.flavour == "llama":
            self.inv_freq = rope_inv_freq(
                cfg
            )  # plain fp32 tensor: model.to(bf16) must not round it
        self.gradient_checkpointing = False
        self.attn_padding = (
            "mask"  # "mask": dense key mask (reference); "compact": see attention.py
        )
        self.compute_dtype: torch.dtype | None = None  # set by precision.mixed_precision
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # scaled init of residual projections (GPT-2)
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, std=cfg.init_std / math.sqrt(2 * cfg.n_layer))

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.config.init_std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def _rope(self, positions: torch.Tensor, dtype: torch.dtype, need: int | None = None):
        """cos/sin (B, 1, T, D) looked up in a table grown on demand (fp32, per device); `need`
        (table rows) given avoids reading `positions.max()` on the host."""
        need = int(positions.max()) + 1 if need is None else need
        table = getattr(self, "_rope_table", None)
        if table is None or table[0].shape[0] < need or table[0].device != positions.device:
            n = max(need, min(self.config.max_seq_len, 4096))
            t = torch.arange(n, device=positions.device, dtype=torch.float32)
            freqs = torch.outer(t, self.inv_freq.to(positions.device))  # (n, D/2)
            emb = torch.cat((freqs, freqs), dim=-1)  # (n, D)
            self._rope_table = table = (emb.cos(), emb.sin())
        cos, sin = table[0][positions], table[1][positions]  # (B, T, D)
        return cos[:, None].to(dtype), sin[:, None].to(dtype)

    def hidden(
        self,
        ids: torch.Tensor,
        kv_cache=None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Final-normed hidden states (B, T, C); see the module docstring for the arguments."""
        with precision.autocast(self, ids.device):
            return self._hidden(ids, kv_cache, positions, key_mask)

    def _hidden(self, ids, kv_cache, positions, key_mask) -> torch.Tensor:
        B, T = ids.shape
        own = getattr(kv_cache, "attends", False)  # masks, slots and kernel are the cache's
        start = kv_cache.length if kv_cache is not None and not own else 0
        if positions is None:
            positions = torch.arange(start, start + T, device=ids.device).expand(B, T)
        if not own and int(positions.max()) >= self.config.max_seq_len and self.pos_emb is not None:
            raise ValueError(
                f"GPT: position {int(positions.max())} exceeds max_seq_len="
                f"{self.config.max_seq_len}"
            )
        inverse = None
        if key_mask is not None and kv_cache is None and self.attn_padding == "compact":
            order = compact_order(key_mask[:, :T])  # (B, T) real tokens first
            ids, positions = ids.gather(1, order), positions.gather(1, order)
            inverse = torch.empty_like(order).scatter_(
                1, order, torch.arange(T, device=ids.device).expand(B, T)
            )
            key_mask = None
        x = self.tok_emb(ids)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(positions)
        need = self.config.max_seq_len if own else None  # no host read of positions.max()
        rope = self._rope(positions, x.dtype, need) if self.pos_emb is None else None
        if own:
            attn_mask = kv_cache.prepare(T)  # whatever its `attend` takes, built once per step
        elif key_mask is None and start == 0:
            attn_mask = None  # plain causal: no cache, or a cache's first (prefill) write
        else:
            attn_mask = attention_mask(key_mask, start, T, ids.device)
            if T == 1 and kv_cache is not None:  # decode step: see `decode_attention`
                attn_mask = additive_mask(attn_mask)  # built once, shared by every layer
        for i, block in enumerate(self.blocks):
            if self.gradient_checkpointing and self.training and kv_cache is None:
                x = torch.utils.checkpoint.checkpoint(
                    block, x, rope, i, None, attn_mask, use_reentrant=False
                )
            else:
                x = block(x, rope, i, kv_cache, attn_mask)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.final_norm(x)  # (B, T, C)
        if inverse is not None:  # back to the caller's slots
            x = x.gather(1, inverse[..., None].expand_as(x))
        return x

    def forward(
        self,
        ids: torch.Tensor,
        kv_cache=None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        with precision.autocast(self, ids.device):  # one context for the trunk and the lm_head
            return self.lm_head(self._hidden(ids, kv_cache, positions, key_mask))  # (B, T, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())


@dataclass
class KVCache:
    """Preallocated keys/values for every layer: k, v (L, B, Hkv, S_max, D); one shared length."""

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @classmethod
    def allocate(cls, cfg: GPTConfig, batch: int, max_len: int, dtype, device) -> KVCache:
        shape = (cfg.n_layer, batch, cfg.n_kv_head, max_len, cfg.head_dim)
        return cls(
            torch.empty(shape, dtype=dtype, device=device),
            torch.empty(shape, dtype=dtype, device=device),
        )

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KVCache: writing up to slot {end} exceeds capacity {self.capacity}")
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def expand(self, n: int, capacity: int | None = None) -> KVCache:
        """Repeat every row n times (prompt-major), optionally into a larger preallocated buffer."""
        L, B, H, _, D = self.k.shape
        cap = capacity or self.capacity
        shape = (L, B * n, H, cap, D)
        out = KVCache(self.k.new_empty(shape), self.v.new_empty(shape), self.length)
        for src, dst in ((self.k, out.k), (self.v, out.v)):  # one broadcast copy, no temporary
            dst.view(L, B, n, H, cap, D)[..., : self.length, :] = src[:, :, None, :, : self.length]
        return out
