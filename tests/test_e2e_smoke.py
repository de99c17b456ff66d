"""End-to-end smoke run of the default experiment at a tiny budget (a tiny cached base, 3 steps)."""

import json
from pathlib import Path

import pytest

from experiments.demo.corpus import CorpusConfig
from experiments.demo.pretrain import BaseEvalConfig, ModelShape, PretrainConfig, ensure_base
from rlreason.lm_train import LMTrainConfig

TINY_BASE = PretrainConfig(
    corpus=CorpusConfig(n_docs=200, n_train=60, n_eval=20),
    model=ModelShape(n_layer=1, n_head=2, d_model=32, max_seq_len=128),
    train=LMTrainConfig(steps=5, batch_size=8, warmup_steps=1),
    anneal=None,
    eval=BaseEvalConfig(n_problems=4, samples=2, max_new_tokens=12),
)


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    register()
    with initialize_config_dir(str(Path("experiments/conf").resolve()), version_base=None):
        return OmegaConf.to_object(hydra_compose("config", overrides=overrides))


@pytest.mark.timeout(300)
def test_the_default_experiment_writes_a_consistent_run_directory(tmp_path):
    from experiments.train import run

    base = ensure_base(TINY_BASE, tmp_path / "cache", log=lambda *a: None)
    run_dir = tmp_path / "run"
    cfg = compose(
        [
            "model=local",
            f"model.path={base}",
            "train.steps=3",
            "optim.warmup_steps=1",
            "train.prompts_per_step=2",
            "eval.n_problems=4",
            "eval.samples=2",
            "eval.every=2",
            "sampling.max_new_tokens=16",
            "train.progress=false",
            "log.samples_every=1",
            f"log.run_dir={run_dir}",
            "env.n_train=60",
            "env.n_eval=20",
        ]
    )
    assert cfg.name == "r1_zero_tiny" and cfg.log.wandb.mode == "offline"
    summary = run(cfg)
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "report.md",
        "latest",
        "samples.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "wandb").glob("offline-run-*")), "no offline W&B run"
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "reward/total/mean" in r]
    eval_steps = [r["step"] for r in rows if "eval/greedy_acc" in r]
    assert train_steps == [1, 2, 3] and eval_steps == [0, 2, 3]
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["step"] == summary["step"] == 3
    final_eval = next(r for r in rows if r["step"] == 3 and "eval/greedy_acc" in r)
    assert on_disk["after"]["eval/greedy_acc"] == final_eval["eval/greedy_acc"]
    first_eval = next(r for r in rows if r["step"] == 0)
    assert on_disk["before"]["eval/pass@1"] == first_eval["eval/pass@1"]
    assert (run_dir / "latest").read_text().strip().endswith("step_000003")
    model = json.loads((run_dir / "model.json").read_text())  # the checkpoint's shape, not model.*
    assert model["source"] == "local" and model["path"] == str(base)
    assert {k: model["config"][k] for k in ("flavour", "n_layer", "n_head", "d_model")} == {
        "flavour": "gpt2",
        "n_layer": 1,
        "n_head": 2,
        "d_model": 32,
    }
    assert model["trainable"] == model["parameters"] > 0 and model["lora"] is False
    assert "greedy" in (run_dir / "report.md").read_text().lower()
