"""Read a Hugging Face checkpoint into our GPT: `load_pretrained`.

`load_pretrained(path, dtype="auto", device="cpu", adapter=None)` reads a local directory in
Hugging Face layout (config.json; model.safetensors or sharded model-0000x-of-0000y.safetensors
with model.safetensors.index.json; tokenizer.json and friends) for GPT-2, Llama, Qwen2 and Qwen3
and returns `(GPT, HFTokenizer)` (`with_tokenizer=False`: `(GPT, None)`). The model is built on
the `meta` device, allocated once in the target dtype and filled tensor by tensor from
`safe_open`, so no second full copy of the weights is held. `dtype="auto"` takes config.json's
dtype (float32 when absent). `path` may be a PEFT adapter directory whose
`base_model_name_or_path` is a local base directory, or pass `adapter=` explicitly.

Errors name the problem: a missing directory or file (`CheckpointError`), a listed shard that is
absent, a tensor whose shape disagrees with config.json, a tensor missing from or unknown to the
architecture, an unsupported model_type or config field.

Not here: writing checkpoints (export.py), the architecture tables (arch.py), PEFT adapters
(peft.py), the tokenizer (tokenizer.py), `.bin` (pickle) checkpoints (refused), Hub downloads.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rlreason.model.gpt import DTYPES, GPT, GPTConfig, rope_inv_freq
from rlreason.model.hf.arch import Arch, arch_of, hf_shape, split
from rlreason.model.hf.files import INDEX, CheckpointError, read_json
from rlreason.model.hf.peft import load_peft_adapter
from rlreason.model.hf.tokenizer import HFTokenizer


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint, checking that every indexed shard exists."""
    single, index = directory / "model.safetensors", directory / INDEX
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = read_json(index, "sharded checkpoint index").get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index} has no weight_map")
        shards = [directory / name for name in dict.fromkeys(weight_map.values())]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise CheckpointError(
                f"{directory}: shard(s) {missing} listed in {INDEX} are missing (partial download?)"
            )
        return shards
    hint = (
        " (pickle .bin checkpoints are not loaded; convert to safetensors)"
        if any(directory.glob("*.bin"))
        else ""
    )
    raise CheckpointError(f"{directory}: no model.safetensors or {INDEX}{hint}")


def resolve_dtype(dtype, hf: dict) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    name = (
        dtype
        if dtype not in (None, "auto")
        else (hf.get("dtype") or hf.get("torch_dtype") or "float32")
    )
    if name not in DTYPES:
        raise ValueError(f"load_pretrained: dtype {name!r} not supported ({', '.join(DTYPES)})")
    return DTYPES[name]


def empty_model(cfg: GPTConfig, dtype: torch.dtype, device) -> GPT:
    """A GPT whose parameters are allocated once, uninitialised, in `dtype` on `device`."""
    with torch.device("meta"):
        model = GPT(cfg)
    model = model.to(dtype=dtype).to_empty(device=device)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.tok_emb.weight
    if cfg.flavour == "llama":  # RoPE frequencies stay float32
        model.inv_freq = rope_inv_freq(cfg).to(device)
    return model


@torch.no_grad()
def stream_weights(model: GPT, arch: Arch, shards: list[Path], model_type: str = "") -> None:
    """Copy every tensor of every shard into the model's parameters, one tensor at a time."""
    from safetensors import safe_open

    cfg = model.config
    links = {link.hf: link for link in arch.links(cfg)}
    params = dict(model.named_parameters())
    filled: set[str] = set()
    for shard in shards:
        with safe_open(str(shard), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                name = arch.normalise(key)
                link = links.get(name)
                if link is None:
                    if name.endswith(arch.ignored) or (
                        cfg.tie_embeddings and name == "lm_head.weight"
                    ):
                        continue
                    raise CheckpointError(
                        f"{shard.name}: tensor {key!r} is not part of a "
                        f"{model_type or 'model'} with this config.json"
                    )
                targets = [params[n] for n in link.ours]
                shapes = [t.shape for t in targets]
                tensor = f.get_tensor(key)
                expected = hf_shape(link, shapes)
                if tuple(tensor.shape) != expected:
                    raise CheckpointError(
                        f"{shard.name}: tensor {key!r} has shape {tuple(tensor.shape)}, but "
                        f"config.json implies {expected} (for {', '.join(link.ours)})"
                    )
                for target, part in zip(targets, split(link, tensor, shapes)):
                    target.copy_(part)
                filled.update(link.ours)
                del tensor
    missing = [link.hf for link in links.values() if not set(link.ours) <= filled]
    if missing:
        raise CheckpointError(
            f"{shards[0].parent}: checkpoint lacks {len(missing)} tensor(s), e.g. {missing[:4]}"
        )


def load_pretrained(path, dtype="auto", device="cpu", adapter=None, with_tokenizer: bool = True):
    """(GPT, HFTokenizer | None) from a local HF directory; see the module docstring."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"load_pretrained: {path} is not a directory")
    if (
        adapter is None
        and (path / "adapter_config.json").is_file()
        and not (path / "config.json").is_file()
    ):
        adapter, path = path, _adapter_base(path)
    hf = read_json(path / "config.json", "a Hugging Face model directory needs config.json")
    model_type, arch = arch_of(hf, str(path / "config.json"))
    cfg = arch.to_config(hf)
    shards = weight_files(path)
    if with_tokenizer and not (path / "tokenizer.json").is_file():
        raise CheckpointError(
            f"{path}/tokenizer.json is missing (pass with_tokenizer=False to load the weights only)"
        )
    tokenizer = HFTokenizer.load(path) if with_tokenizer else None
    model = empty_model(cfg, resolve_dtype(dtype, hf), device)
    stream_weights(model, arch, shards, model_type)
    model.hf_config, model.hf_source = hf, str(path.resolve())
    generation = path / "generation_config.json"
    model.hf_generation_config = read_json(generation, "") if generation.is_file() else None
    model.eval()
    if adapter is not None:
        load_peft_adapter(model, adapter)
    return model, tokenizer


def _adapter_base(adapter_dir: Path) -> Path:
    base = read_json(adapter_dir / "adapter_config.json", "PEFT adapter config").get(
        "base_model_name_or_path"
    )
    if not base or not Path(base).is_dir():
        raise CheckpointError(
            f"{adapter_dir}/adapter_config.json: base_model_name_or_path={base!r} "
            "is not a local directory; call load_pretrained(base, adapter=...)"
        )
    return Path(base)
