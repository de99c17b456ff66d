"""End-to-end behaviour of the RL trainer on a tiny random model (CPU, seconds)."""

import json
import math
from pathlib import Path

import pytest
import torch

from experiments.schema import env_config
from experiments.train import build_trainer, run
from rlreason.config import Config, ConfigError, validate


def tiny_cfg(tmp_path: Path, **over) -> Config:
    cfg = Config()
    cfg.model.source, cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model = "scratch", 2, 2, 32
    cfg.model.max_seq_len = 64
    cfg.env = env_config("arithmetic", digits=2, n_train=40, n_eval=8)
    cfg.sampling.max_new_tokens = 8
    cfg.train.steps, cfg.train.prompts_per_step, cfg.train.progress = 4, 2, False
    cfg.train.save_every = 0
    cfg.algo.group_size = 4
    cfg.optim.warmup_steps, cfg.optim.lr = 1, 1e-2
    cfg.eval.n_problems, cfg.eval.samples = 0, 2
    cfg.log.wandb.mode, cfg.log.console_every, cfg.log.samples_every = "disabled", 1000, 0
    cfg.log.run_dir = str(tmp_path / "run")
    for key, value in over.items():
        obj = cfg
        *path, last = key.split(".")
        for p in path:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    return cfg


def metrics_by_step(run_dir) -> dict[int, dict]:
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return {
        r["step"]: {k: v for k, v in r.items() if not k.startswith("perf/")}
        for r in rows
        if "reward/total/mean" in r
    }


def assert_same_metrics(a: dict, b: dict, steps) -> None:
    """The logged metrics of `steps` agree: the same keys, text equal, numbers within 1e-6."""
    for step in steps:
        assert a[step].keys() == b[step].keys()
        for k, v in a[step].items():
            if isinstance(v, str):  # non-finite values are logged as text
                assert v == b[step][k], (step, k)
            else:
                assert v == pytest.approx(b[step][k], rel=1e-6, abs=1e-9), (step, k)


def test_stopping_after_two_steps_and_resuming_logs_the_same_metrics_as_a_straight_run(tmp_path):
    straight = tiny_cfg(tmp_path, **{"log.run_dir": str(tmp_path / "a"), "algo.epochs": 2})
    run(straight)
    first = tiny_cfg(
        tmp_path, **{"log.run_dir": str(tmp_path / "b"), "algo.epochs": 2, "train.stop_after": 2}
    )
    out = run(first)
    assert out["step"] == 2 and (tmp_path / "b" / "latest").is_file()
    resumed = tiny_cfg(tmp_path, **{"train.resume": str(tmp_path / "b")})
    run(resumed)
    a, b = metrics_by_step(tmp_path / "a"), metrics_by_step(tmp_path / "b")
    assert sorted(b) == [1, 2, 3, 4]
    assert_same_metrics(a, b, steps=(3, 4))
    # the schedule spans train.steps (4), not stop_after: step s uses lr_at(s) with warmup 1, so
    # step 1 is at the peak, step 3 two thirds down the cosine and step 4 at min_lr
    assert a[1]["lr"] == pytest.approx(1e-2)
    assert a[3]["lr"] == pytest.approx(1e-5 + (1e-2 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 2 / 3)))
    assert a[4]["lr"] == pytest.approx(1e-5)


def test_micro_batch_size_does_not_change_the_update(tmp_path):
    params = []
    for budget in (10_000, 20):
        cfg = tiny_cfg(
            tmp_path,
            **{
                "train.steps": 1,
                "optim.warmup_steps": 0,
                "algo.epochs": 2,
                "algo.micro_batch_tokens": budget,
                "log.run_dir": str(tmp_path / f"r{budget}"),
            },
        )
        torch.manual_seed(0)
        trainer = build_trainer(cfg)
        trainer.train_step(1)
        params.append([p.detach().clone() for p in trainer.model.parameters()])
    for x, y in zip(*params):
        torch.testing.assert_close(x, y, atol=2e-6, rtol=1e-5)


def test_sampler_and_trainer_logprobs_agree(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"train.steps": 1, "optim.warmup_steps": 0})
    run(cfg)
    m = metrics_by_step(tmp_path / "run")[1]
    assert m["policy/logprob_mismatch"] < 1e-4


def test_dynamic_sampling_drops_groups_whose_rewards_are_all_equal(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"algo.dynamic_sampling": True, "algo.max_refill_rounds": 1})
    trainer = build_trainer(cfg)
    batch, metrics = trainer.collect(1)
    # a random model earns the same reward everywhere: every group is dropped, refills included
    assert metrics["group/zero_std_frac"] == 1.0 and batch is None
    assert metrics["group/refill_rounds"] == 1.0 and trainer.data_pos == 4


def test_non_finite_steps_are_skipped_then_abort_the_run(tmp_path, monkeypatch):
    import rlreason.rl.update as update

    real = update.total_loss

    def nan_loss(*args, **kwargs):
        loss, stats = real(*args, **kwargs)
        return loss * float("nan"), {**stats, "loss/total": float("nan")}

    monkeypatch.setattr(update, "total_loss", nan_loss)
    trainer = build_trainer(tiny_cfg(tmp_path, **{"train.max_bad_steps": 2}))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with pytest.raises(FloatingPointError, match="2 steps in a row"):
        trainer.run()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train/skipped_updates"] for r in rows] == [1.0]
    for x, y in zip(before, trainer.model.parameters()):  # no NaN step ever reached the weights
        assert torch.equal(x, y)


def test_the_engine_reports_non_finite_logits_clearly(tmp_path):
    from rlreason.sampling.engine import generate

    trainer = build_trainer(tiny_cfg(tmp_path))
    with torch.no_grad():
        trainer.model.blocks[0].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite logits"):
        generate(trainer.model, [[5, 6]], n=2, max_new_tokens=3, seed=0)


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    trainer = build_trainer(tiny_cfg(tmp_path))
    real = trainer.train_step

    def interrupt_at_two(step):
        if step == 2:
            raise KeyboardInterrupt
        return real(step)

    trainer.train_step = interrupt_at_two
    out = trainer.run()
    assert out == {"interrupted": True, "step": 1}
    assert (tmp_path / "run" / "latest").read_text().strip().endswith("step_000001")


@pytest.mark.parametrize(
    "over, msg",
    [
        ({"algo.group_size": 1}, "group_size"),
        ({"algo.minibatches": 3}, "divisible"),
        ({"train.stop_after": 9}, "stop_after"),
        ({"algo.advantage": "magic"}, "algo.advantage"),
        (
            {"algo.advantage": "gae", "algo.group_size": 1, "algo.dynamic_sampling": True},
            "dynamic_sampling",
        ),
    ],
)
def test_invalid_combinations_fail_before_any_work_with_what_to_change(tmp_path, over, msg):
    with pytest.raises(ConfigError, match=msg):
        validate(tiny_cfg(tmp_path, **over))


def test_hydra_rejects_a_typo_in_an_override_and_accepts_reward_weights():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    register()
    with initialize_config_dir(str(Path("experiments/conf").resolve()), version_base=None):
        cfg = compose("config", overrides=["reward.format.weight=0", "algo=dapo", "seed=3"])
        obj = OmegaConf.to_object(cfg)
        assert obj.reward["format"].weight == 0.0 and obj.algo.clip_high == 0.28 and obj.seed == 3
        with pytest.raises(Exception, match="trian"):
            compose("config", overrides=["trian.steps=3"])
        with pytest.raises(Exception, match="stepz"):
            compose("config", overrides=["train.stepz=3"])


def test_reward_spec_merges_env_defaults_drops_unused_zero_terms_and_passes_prefill(tmp_path):
    from envs.base import build_env
    from envs.templates import get_template
    from rewards.scoring import reward_spec

    env = build_env("arithmetic", n_train=10, n_eval=2)
    overrides = {"format": (0.0, {}), "language": (0.0, {})}
    spec = reward_spec(env, get_template("r1_zero_prefill"), overrides, "format")
    # format and math accept `prefilled`: both are told about the opened <think>
    assert spec == {
        "math": {"weight": 1.0, "prefilled": True},
        "format": {"weight": 0.0, "prefilled": True},
    }
    with pytest.raises(ValueError, match="reward_gate"):
        reward_spec(env, get_template("tiny"), overrides, "tag_count")


@pytest.mark.parametrize(
    "entry, name", [("experiments.train", "r1_zero_tiny"), ("experiments.eval", "eval")]
)
def test_console_scripts_compose_their_config_from_any_working_directory(tmp_path, entry, name):
    import subprocess
    import sys

    code = f"import sys; sys.argv = ['x', '--cfg', 'job']; from {entry} import main; main()"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert f"name: {name}" in out.stdout
