"""The routes' jobs on a real checkpoint: SmolLM2-135M-Instruct (Llama, the `smollm2_dir` fixture)
as teacher for rejection sampling, as an SFT policy under LoRA, and as both teacher and student of
on-policy distillation. `slow`: each job runs the 135M model on the CPU for a few steps."""

import json
from pathlib import Path

import pytest

from rlreason.config import Config

CONF = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())


def compose(config_name: str, *overrides: str) -> Config:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    register()
    with initialize_config_dir(CONF, version_base=None):
        return OmegaConf.to_object(hydra_compose(config_name, overrides=list(overrides)))


def hf(path) -> list[str]:
    return [
        "model=hf",
        f"model.path={path}",
        "model.device=cpu",
        "env.template=chat",
        "env.n_train=8",
        "env.n_eval=2",
        "log.wandb.mode=disabled",
        "train.progress=false",
    ]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_smollm2_samples_traces_fine_tunes_on_them_and_distils_itself(smollm2_dir, tmp_path):
    from experiments.jobs import get_job

    # 1. rejection sampling with the checkpoint as teacher (every trace kept: it is no adder)
    cfg = compose(
        "sample",
        *hf(smollm2_dir),
        "teacher.source=hf",
        f"teacher.path={smollm2_dir}",
        "sample.n=2",
        "sample.n_problems=2",
        "sample.accept=[]",
        "sampling.max_new_tokens=12",
        f"log.run_dir={tmp_path / 'traces'}",
    )
    sampled = get_job("sample")(cfg, "")
    lines = [json.loads(x) for x in Path(sampled["out"]).read_text().splitlines()]
    assert lines and sampled["written"] == len(lines)
    assert all(x["prompt"].startswith("<|im_start|>") for x in lines)  # the chat template
    assert sampled["teacher"]["source"] == "hf"
    # 2. LoRA SFT on those traces
    cfg = compose(
        "sft",
        *hf(smollm2_dir),
        f"sft.data={sampled['out']}",
        "sft.batch_size=2",
        "sft.eval_fraction=0",
        "lora.enabled=true",
        "lora.rank=4",
        "train.steps=2",
        "train.save_every=0",
        "eval.n_problems=0",
        f"log.run_dir={tmp_path / 'sft'}",
    )
    summary = get_job("sft")(cfg, "")
    assert summary["step"] == 2 and summary["tokens"] > 0
    assert (tmp_path / "sft" / "checkpoints").is_dir()
    # 3. on-policy distillation, the checkpoint teaching its own LoRA student: at step 1 the
    # adapters are zero, so student and teacher agree token by token
    cfg = compose(
        "config",
        *hf(smollm2_dir),
        "algo=onpolicy_distill",
        "teacher.source=hf",
        f"teacher.path={smollm2_dir}",
        "lora.enabled=true",
        "lora.rank=4",
        "train.steps=1",
        "train.prompts_per_step=2",
        "algo.group_size=2",
        "algo.epochs=1",
        "sampling.max_new_tokens=8",
        "eval.n_problems=0",
        f"log.run_dir={tmp_path / 'distill'}",
    )
    get_job("rl")(cfg, "")
    rows = [
        json.loads(x) for x in (tmp_path / "distill" / "metrics.jsonl").read_text().split("\n") if x
    ]
    step = next(r for r in rows if "distill/reverse_kl" in r)
    assert abs(step["distill/reverse_kl"]) < 1e-3
