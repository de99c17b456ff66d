"""Architecture tables: Hugging Face `config.json` ↔ `GPTConfig`, and HF tensor names ↔ ours.

`ARCHS` maps a `model_type` (gpt2, llama, qwen2, qwen3) to an `Arch` with `to_config` (refusing
fields our model cannot reproduce exactly: `UnsupportedConfig` names the field) and `from_config`
(the HF config of a natively built model). `links(arch, cfg)` lists every HF tensor as a
`Link(hf, ours, kind)`: `cat` (our tensors concatenated along dim 0; one tensor is a plain copy)
or `conv1d` (GPT-2's transposed `Conv1D`: our (out, in) weights transposed and concatenated along
dim 1, which is how `c_attn` fuses q/k/v). `split` and `join` convert between the two sides, with
shapes from our (possibly meta) tensors, so one table serves import, shape checks, merged export
and the PEFT module mapping.

Not here: file I/O (load.py, export.py), adapters (peft.py), the tokenizer (tokenizer.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rlreason.model.gpt import GPTConfig

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


class UnsupportedConfig(ValueError):
    """A config.json field our GPT cannot reproduce exactly."""


@dataclass(frozen=True)
class Link:
    hf: str  # HF tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
    ours: tuple[str, ...]  # our state-dict names it is built from
    kind: str = "cat"  # "cat" | "conv1d"


def split(link: Link, hf_tensor: torch.Tensor, our_shapes: list[torch.Size]) -> list[torch.Tensor]:
    """HF tensor → our tensors (views where possible)."""
    if link.kind == "cat":
        return list(torch.split(hf_tensor, [s[0] for s in our_shapes], dim=0))
    parts = torch.split(hf_tensor, [s[0] for s in our_shapes], dim=1)  # (in, out_i) each
    return [p.t() for p in parts]  # (out_i, in)


def hf_shape(link: Link, our_shapes: list[torch.Size]) -> tuple[int, ...]:
    """Shape of the HF tensor built from our tensors of `our_shapes`."""
    total = sum(s[0] for s in our_shapes)
    if link.kind == "cat":
        return (total, *our_shapes[0][1:])
    return (our_shapes[0][1], total)


def join(link: Link, ours: list[torch.Tensor]) -> torch.Tensor:
    """Our tensors → the HF tensor (a new contiguous tensor unless it is a single plain copy)."""
    if link.kind == "cat":
        return ours[0] if len(ours) == 1 else torch.cat(ours, dim=0)
    return torch.cat([w.t() for w in ours], dim=1).contiguous()  # (in, sum out_i)


# ---------------------------------------------------------------------------------------------
# config.json → GPTConfig


def _require(hf: dict, field: str, ok: Callable[[Any], bool], allowed: str) -> None:
    if field in hf and hf[field] is not None and not ok(hf[field]):
        raise UnsupportedConfig(
            f"config.json: {field}={hf[field]!r} is not supported (supported: {allowed})"
        )


def _rope(hf: dict) -> tuple[float, dict | None]:
    """rope theta and scaling from either transformers-5 `rope_parameters` or v4 fields."""
    params = dict(hf.get("rope_parameters") or {})
    if hf.get("rope_parameters") is not None and not isinstance(hf["rope_parameters"], dict):
        raise UnsupportedConfig(
            "config.json: rope_parameters must be a single dict "
            "(per-layer-type RoPE is not supported)"
        )
    if isinstance(params.get("full_attention"), dict):
        raise UnsupportedConfig("config.json: rope_parameters per layer type is not supported")
    field = "rope_parameters" if params else "rope_scaling"
    params = params or dict(hf.get("rope_scaling") or {})
    theta = float(params.pop("rope_theta", hf.get("rope_theta", 10000.0)))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedConfig(
            f"config.json: {field}.rope_type={kind!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    prf = params.get("partial_rotary_factor", hf.get("partial_rotary_factor", 1.0))
    if prf not in (None, 1, 1.0):
        raise UnsupportedConfig(
            f"config.json: partial_rotary_factor={prf!r} is not supported (1.0)"
        )
    return theta, (params if kind != "default" else None)


def _gpt2_config(hf: dict) -> GPTConfig:
    _require(
        hf, "activation_function", lambda v: v in ("gelu_new", "gelu_pytorch_tanh"), "gelu_new"
    )
    _require(hf, "scale_attn_weights", lambda v: v is True, "true")
    _require(hf, "scale_attn_by_inverse_layer_idx", lambda v: v is False, "false")
    _require(hf, "add_cross_attention", lambda v: v is False, "false")
    return GPTConfig(
        vocab_size=hf["vocab_size"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        d_model=hf["n_embd"],
        max_seq_len=hf.get("n_positions", 1024),
        flavour="gpt2",
        d_ff=hf.get("n_inner") or 4 * hf["n_embd"],
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        tie_embeddings=hf.get("tie_word_embeddings", True),
    )


def _llama_family(qkv_bias: bool | None, qk_norm: bool) -> Callable[[dict], GPTConfig]:
    def convert(hf: dict) -> GPTConfig:
        _require(hf, "hidden_act", lambda v: v == "silu", "silu")
        _require(hf, "mlp_bias", lambda v: v is False, "false")
        _require(hf, "attention_bias", lambda v: v is False, "false (o_proj bias is not modelled)")
        _require(hf, "use_sliding_window", lambda v: v is False, "false")
        _require(hf, "layer_types", lambda v: set(v) <= {"full_attention"}, "full_attention only")
        _require(hf, "pretraining_tp", lambda v: v == 1, "1")
        theta, scaling = _rope(hf)
        n_head = hf["num_attention_heads"]
        return GPTConfig(
            vocab_size=hf["vocab_size"],
            n_layer=hf["num_hidden_layers"],
            n_head=n_head,
            d_model=hf["hidden_size"],
            max_seq_len=hf.get("max_position_embeddings", 2048),
            flavour="llama",
            n_kv_head=hf.get("num_key_value_heads") or n_head,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // n_head,
            d_ff=hf["intermediate_size"],
            norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=theta,
            rope_scaling=scaling,
            qkv_bias=bool(hf.get("attention_bias", False)) if qkv_bias is None else qkv_bias,
            qk_norm=qk_norm,
            tie_embeddings=hf.get("tie_word_embeddings", False),
        )

    return convert


# ---------------------------------------------------------------------------------------------
# GPTConfig → config.json (for models built natively)


def _gpt2_hf(cfg: GPTConfig) -> dict:
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_embd": cfg.d_model,
        "n_positions": cfg.max_seq_len,
        "n_inner": cfg.d_ff,
        "layer_norm_epsilon": cfg.norm_eps,
        "activation_function": "gelu_new",
        "tie_word_embeddings": cfg.tie_embeddings,
        "attn_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
    }


def _llama_hf(architecture: str, model_type: str) -> Callable[[GPTConfig], dict]:
    def convert(cfg: GPTConfig) -> dict:
        rope = {"rope_theta": cfg.rope_theta, **(cfg.rope_scaling or {"rope_type": "default"})}
        return {
            "architectures": [architecture],
            "model_type": model_type,
            "vocab_size": cfg.vocab_size,
            "num_hidden_layers": cfg.n_layer,
            "num_attention_heads": cfg.n_head,
            "num_key_value_heads": cfg.n_kv_head,
            "hidden_size": cfg.d_model,
            "head_dim": cfg.head_dim,
            "intermediate_size": cfg.d_ff,
            "max_position_embeddings": cfg.max_seq_len,
            "rms_norm_eps": cfg.norm_eps,
            "hidden_act": "silu",
            "rope_theta": cfg.rope_theta,
            "rope_parameters": rope,
            "rope_scaling": cfg.rope_scaling,
            "tie_word_embeddings": cfg.tie_embeddings,
            "attention_bias": False,
            "use_sliding_window": False,
        }

    return convert


# ---------------------------------------------------------------------------------------------
# tensor names


def _gpt2_links(cfg: GPTConfig) -> list[Link]:
    out = [
        Link("transformer.wte.weight", ("tok_emb.weight",)),
        Link("transformer.wpe.weight", ("pos_emb.weight",)),
    ]
    for i in range(cfg.n_layer):
        h, b = f"transformer.h.{i}", f"blocks.{i}"
        qkv = [f"{b}.attn.{p}_proj" for p in "qkv"]
        out += [
            Link(f"{h}.attn.c_attn.weight", tuple(f"{n}.weight" for n in qkv), "conv1d"),
            Link(f"{h}.attn.c_attn.bias", tuple(f"{n}.bias" for n in qkv)),
            Link(f"{h}.attn.c_proj.weight", (f"{b}.attn.o_proj.weight",), "conv1d"),
            Link(f"{h}.mlp.c_fc.weight", (f"{b}.mlp.up_proj.weight",), "conv1d"),
            Link(f"{h}.mlp.c_proj.weight", (f"{b}.mlp.down_proj.weight",), "conv1d"),
        ]
        for hf_mod, ours in (
            ("attn.c_proj", "attn.o_proj"),
            ("mlp.c_fc", "mlp.up_proj"),
            ("mlp.c_proj", "mlp.down_proj"),
            ("ln_1", "attn_norm"),
            ("ln_2", "mlp_norm"),
        ):
            out.append(Link(f"{h}.{hf_mod}.bias", (f"{b}.{ours}.bias",)))
        out += [
            Link(f"{h}.ln_1.weight", (f"{b}.attn_norm.weight",)),
            Link(f"{h}.ln_2.weight", (f"{b}.mlp_norm.weight",)),
        ]
    out += [
        Link("transformer.ln_f.weight", ("final_norm.weight",)),
        Link("transformer.ln_f.bias", ("final_norm.bias",)),
    ]
    if not cfg.tie_embeddings:
        out.append(Link("lm_head.weight", ("lm_head.weight",)))
    return out


def _llama_links(cfg: GPTConfig) -> list[Link]:
    out = [Link("model.embed_tokens.weight", ("tok_emb.weight",))]
    for i in range(cfg.n_layer):
        h, b = f"model.layers.{i}", f"blocks.{i}"
        pairs = [("input_layernorm", "attn_norm"), ("post_attention_layernorm", "mlp_norm")]
        pairs += [(f"self_attn.{p}_proj", f"attn.{p}_proj") for p in "qkvo"]
        pairs += [(f"mlp.{p}_proj", f"mlp.{p}_proj") for p in ("gate", "up", "down")]
        if cfg.qk_norm:
            pairs += [("self_attn.q_norm", "attn.q_norm"), ("self_attn.k_norm", "attn.k_norm")]
        out += [Link(f"{h}.{hf_mod}.weight", (f"{b}.{ours}.weight",)) for hf_mod, ours in pairs]
        if cfg.qkv_bias:
            out += [
                Link(f"{h}.self_attn.{p}_proj.bias", (f"{b}.attn.{p}_proj.bias",)) for p in "qkv"
            ]
    out.append(Link("model.norm.weight", ("final_norm.weight",)))
    if not cfg.tie_embeddings:
        out.append(Link("lm_head.weight", ("lm_head.weight",)))
    return out


def _gpt2_normalise(name: str) -> str:
    """Bare `GPT2Model` checkpoints (e.g. the original gpt2) lack the `transformer.` prefix."""
    return name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}"


@dataclass(frozen=True)
class Arch:
    to_config: Callable[[dict], GPTConfig]
    from_config: Callable[[GPTConfig], dict]
    links: Callable[[GPTConfig], list[Link]]
    normalise: Callable[[str], str] = lambda name: name
    ignored: tuple[str, ...] = ()  # HF tensor-name suffixes that carry no weights


ARCHS: dict[str, Arch] = {
    "gpt2": Arch(
        _gpt2_config, _gpt2_hf, _gpt2_links, _gpt2_normalise, (".attn.bias", ".attn.masked_bias")
    ),
    "llama": Arch(
        _llama_family(None, False),
        _llama_hf("LlamaForCausalLM", "llama"),
        _llama_links,
        ignored=("rotary_emb.inv_freq",),
    ),
    "qwen2": Arch(
        _llama_family(True, False),
        _llama_hf("Qwen2ForCausalLM", "qwen2"),
        _llama_links,
        ignored=("rotary_emb.inv_freq",),
    ),
    "qwen3": Arch(
        _llama_family(False, True),
        _llama_hf("Qwen3ForCausalLM", "qwen3"),
        _llama_links,
        ignored=("rotary_emb.inv_freq",),
    ),
}


def arch_of(hf: dict, where: str = "config.json") -> tuple[str, Arch]:
    model_type = hf.get("model_type")
    if model_type not in ARCHS:
        raise UnsupportedConfig(
            f"{where}: model_type={model_type!r} is not a supported "
            f"architecture (supported: {', '.join(ARCHS)})"
        )
    return model_type, ARCHS[model_type]


def arch_for_model(cfg: GPTConfig) -> str:
    """The HF architecture a natively built model exports as."""
    if cfg.flavour == "gpt2":
        return "gpt2"
    if cfg.qk_norm and not cfg.qkv_bias:
        return "qwen3"
    if cfg.qkv_bias and not cfg.qk_norm:
        return "qwen2"
    if not (cfg.qkv_bias or cfg.qk_norm):
        return "llama"
    raise UnsupportedConfig("GPTConfig: qkv_bias together with qk_norm has no HF architecture here")
