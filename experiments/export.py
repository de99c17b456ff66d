"""`rlreason-export`: a training run's checkpoint as a PEFT adapter or a merged HF model.

    rlreason-export RUN_DIR --peft DIR      # adapter_config.json + adapter_model.safetensors
    rlreason-export RUN_DIR --merged DIR    # config.json + safetensors (+ tokenizer files)
    rlreason-export RUN_DIR --merged DIR --step 25 --force

The run's model is rebuilt from its `config.yaml` (base weights from `model.*`, seeded as
training was, on the CPU, in the run's `model.dtype`) and the checkpoint's trainable weights
(`--step N`, default the run's `latest`) are loaded into it. `--peft` needs a LoRA run
(`lora.enabled=true`) on a Hugging Face base (`model.source=hf`): `peft.PeftModel.from_pretrained(
AutoModelForCausalLM.from_pretrained(model.path), DIR)` loads it, as does rlreason-eval's
`eval.adapter`. `--merged` folds any LoRA update into the weights and writes a directory that
`transformers.AutoModelForCausalLM.from_pretrained` loads, with the base's tokenizer files; a run
of the built-in GPT (`model.source=base/scratch/local`) exports as the HF architecture its
GPTConfig corresponds to (gpt2, llama, qwen2 or qwen3), without a tokenizer (its character
tokenizer has no transformers equivalent). Both write `export.json` (run, checkpoint, step).
Output goes to a temporary sibling first and is renamed into place; an existing non-empty DIR is
refused unless `--force`, and DIR may never be the run directory or the base model directory.

Not here: the formats themselves (rlreason.model.hf.peft, rlreason.model.hf.export).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

NATIVE = ("base", "scratch", "local")  # model sources that build rlreason's own GPT


class ExportError(ValueError):
    """A run directory, checkpoint or output directory that cannot be exported (path named)."""


def checkpoint_dir(run_dir: Path, step: int | None) -> Path:
    """`checkpoints/step_N` for `step`, else the one `<run_dir>/latest` names."""
    from rlreason.checkpoint import find_checkpoint

    try:
        return find_checkpoint(run_dir, step)
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None


def check_request(run_dir: Path, saved, peft: bool) -> None:
    """Refuse what this run cannot be exported as, saying what is possible instead."""
    source, lora = saved.model.source, saved.lora.enabled
    if peft and not lora:
        raise ExportError(
            f"{run_dir} is a full fine-tuning run (lora.enabled=false): it has no adapter to "
            "write; use --merged DIR for the whole fine-tuned model"
        )
    if peft and source in NATIVE:
        raise ExportError(
            f"{run_dir} trained the built-in GPT (model.source={source}), which has no "
            "Hugging Face base directory for a PEFT adapter to apply to; use --merged DIR "
            "(a transformers-loadable model with the adapter folded in)"
        )


def check_output(out: Path, run_dir: Path, base: str | None, force: bool) -> None:
    protected = [run_dir.resolve()] + ([Path(base).resolve()] if base else [])
    target = out.resolve()
    for p in protected:
        if target == p or p.is_relative_to(target):
            raise ExportError(f"{out}: refusing to write over {p} (the run or its base model)")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} exists and is not empty (pass --force to replace it)")


def rebuild(saved, ckpt: Path):
    """(model, tokenizer): the run's policy on the CPU with the checkpoint's trainable weights."""
    import torch

    from experiments.build import build_policy
    from rlreason.checkpoint import load_trainable
    from rlreason.model.hf import CheckpointError

    torch.manual_seed(saved.seed)  # as build_trainer does: the same scratch base weights
    try:
        model, tokenizer = build_policy(dataclasses.replace(saved.model, device="cpu"), saved.lora)
    except (CheckpointError, FileNotFoundError) as e:
        raise ExportError(f"the run's base model (model.path={saved.model.path}): {e}") from e
    try:
        load_trainable(model, ckpt / "trainable.safetensors")
    except ValueError as e:  # tensors that do not fit the model config.yaml describes
        raise ExportError(f"{ckpt}: {e}") from e
    return model.eval(), tokenizer


def _write(out: Path, fill) -> None:
    """Call `fill(tmp)` on a temporary sibling of `out`, then put it in `out`'s place."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fill(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            shutil.rmtree(old)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export(
    run_dir, *, peft=None, merged=None, step: int | None = None, force: bool = False
) -> dict:
    """Write the run's checkpoint to `peft` (an adapter) or `merged` (a model); return a record."""
    from experiments.build import load_run_config
    from rlreason.config import ConfigError
    from rlreason.model.hf import HFTokenizer, save_merged, save_peft_adapter

    if (peft is None) == (merged is None):
        raise ExportError("export: pass exactly one of peft=DIR or merged=DIR")
    run_dir, out = Path(run_dir), Path(peft if peft is not None else merged)
    if not run_dir.is_dir():
        raise ExportError(f"{run_dir} is not a directory")
    try:
        saved = load_run_config(run_dir, "RUN_DIR")
    except ConfigError as e:
        raise ExportError(str(e)) from e
    check_request(run_dir, saved, peft is not None)
    ckpt = checkpoint_dir(run_dir, step)
    base = saved.model.path if saved.model.source in ("hf", "local") else None
    check_output(out, run_dir, base, force)
    model, tokenizer = rebuild(saved, ckpt)
    state = ckpt / "state.json"
    record = {
        "kind": "peft" if peft is not None else "merged",
        "run_dir": str(run_dir.resolve()),
        "checkpoint": str(ckpt.resolve()),
        "step": json.loads(state.read_text()).get("step") if state.is_file() else None,
        "base": str(Path(base).resolve()) if base else None,
    }

    def fill(tmp: Path) -> None:
        if peft is not None:
            save_peft_adapter(model, tmp, base_model_name_or_path=record["base"])
        else:
            hf_tokenizer = tokenizer if isinstance(tokenizer, HFTokenizer) else None
            save_merged(model, tmp, tokenizer=hf_tokenizer)
        (tmp / "export.json").write_text(json.dumps(record, indent=1) + "\n")

    try:
        _write(out, fill)
    except ValueError as e:  # e.g. LoRA on a module that has no Hugging Face name
        raise ExportError(f"{out}: {e}") from e
    return {**record, "out": str(out)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="rlreason-export",
        description="Write a training run's checkpoint as a PEFT adapter or a merged HF model.",
    )
    p.add_argument("run_dir", type=Path, help="a directory written by rlreason-train")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--peft", type=Path, metavar="DIR", help="write a PEFT LoRA adapter")
    what.add_argument("--merged", type=Path, metavar="DIR", help="write a merged HF model")
    p.add_argument("--step", type=int, help="the checkpoint step (default: the latest)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    args = p.parse_args(argv)
    try:
        record = export(
            args.run_dir, peft=args.peft, merged=args.merged, step=args.step, force=args.force
        )
    except ExportError as e:
        print(f"[rlreason] export: {e}", file=sys.stderr)
        sys.exit(2)
    what = "PEFT adapter" if record["kind"] == "peft" else "merged model"
    print(
        f"[rlreason] wrote the {what} of step {record['step']} ({record['checkpoint']}) to {record['out']}"
    )
    if record["kind"] == "peft":
        print(
            "  load: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("
            f"{record['base']!r}), {record['out']!r})"
        )


if __name__ == "__main__":
    main()
