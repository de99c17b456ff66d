"""Data-parallel training: 2 Gloo ranks on the CPU compute what one process computes.

Each comparison runs the same tiny config (tests/test_rl_trainer.py's `tiny_cfg`) once in this
process and once as 2 spawned ranks, then compares per-step `loss/total` and `policy/grad_norm`
(and the rollout metrics) and the final weights. The ranks sum partial gradients in another order
than one process's micro-batch loop, so equality is up to float32 rounding: rtol 1e-5, atol 1e-6.
"""

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from experiments.train import run
from rlreason.config import ConfigError, RewardTerm, validate
from tests.test_rl_trainer import assert_same_metrics, metrics_by_step, tiny_cfg

RTOL, ATOL = 1e-5, 1e-6
COMPARED = ("loss/total", "policy/grad_norm", "reward/total/mean", "rollout/length_mean")


def length_mod5_reward(completions, tasks):
    """1 when a completion's length in characters is a multiple of 5: a random model earns it
    now and then, so advantages are not all 0 and some groups are flat, some not (what dynamic
    sampling needs)."""
    return [float(len(c) % 5 == 0) for c in completions]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, tmp_path: Path, runs: list, ports: list[int]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", WORLD_SIZE=str(world), RANK=str(rank))
    os.environ["LOCAL_RANK"] = str(rank)
    for (name, over), port in zip(runs, ports):  # one process group per run
        os.environ["MASTER_PORT"] = str(port)
        run(cfg_for(tmp_path, name, **over))


def run_ranks(tmp_path: Path, *runs: tuple[str, dict], world: int = 2) -> None:
    """Run `cfg_for(tmp_path, name, **over)` for each (name, over) in turn on `world` spawned
    Gloo ranks (configs travel as overrides: the typed env node does not pickle)."""
    ports = [_free_port() for _ in runs]
    mp.spawn(_rank, args=(world, tmp_path, list(runs), ports), nprocs=world, join=True)


def cfg_for(tmp_path: Path, name: str, **over):
    base = {
        "train.threads": 1,
        "train.prompts_per_step": 4,
        "algo.epochs": 2,
        "algo.minibatches": 2,
        "log.run_dir": str(tmp_path / name),
        "reward": {
            "mod5": RewardTerm(1.0, {"reward": "tests.test_distributed:length_mod5_reward"})
        },
    }
    return tiny_cfg(tmp_path, **{**base, **over})


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(
        str(run_dir / (run_dir / "latest").read_text().strip() / "trainable.safetensors")
    )


def eval_rows(run_dir: Path) -> dict[int, dict]:
    """The held-out evaluation metrics logged at each step (NaN-free numbers only)."""
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        r["step"]: {k: v for k, v in r.items() if k.startswith("eval/") and not isinstance(v, str)}
        for r in rows
        if any(k.startswith("eval/") for k in r)
    }


def assert_same_run(one: Path, two: Path, steps: list[int]) -> dict[str, float]:
    """Per-step metrics and final weights agree; returns the largest absolute differences."""
    a, b = metrics_by_step(one), metrics_by_step(two)
    assert sorted(a) == sorted(b) == steps
    assert all(a[s]["policy/grad_norm"] > 0 for s in steps)  # something is learned
    diffs = {}
    for step in steps:
        for k in COMPARED:
            assert b[step][k] == pytest.approx(a[step][k], rel=RTOL, abs=ATOL), (step, k)
            diffs[k] = max(diffs.get(k, 0.0), abs(a[step][k] - b[step][k]))
    ea, eb = eval_rows(one), eval_rows(two)
    assert ea.keys() == eb.keys()
    for step in ea:
        assert ea[step].keys() == eb[step].keys()
        for k, v in ea[step].items():
            assert eb[step][k] == pytest.approx(v, rel=RTOL, abs=ATOL), (step, k)
            diffs["eval/*"] = max(diffs.get("eval/*", 0.0), abs(v - eb[step][k]))
    wa, wb = final_weights(one), final_weights(two)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=RTOL, atol=ATOL)
    diffs["weights"] = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(f"max |1 process - 2 ranks|: {diffs}")
    return diffs


@pytest.mark.parametrize(
    "aggregation", ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"]
)
def test_two_ranks_compute_the_steps_and_weights_of_one_process(tmp_path, aggregation):
    over = {"algo.aggregation": aggregation}
    if aggregation == "seq_mean_token_mean":  # also the sharded held-out evaluation
        over.update({"eval.n_problems": 5, "eval.every": 2})
    run(cfg_for(tmp_path, "one", **over))
    run_ranks(tmp_path, ("two", over))
    assert_same_run(tmp_path / "one", tmp_path / "two", [1, 2, 3, 4])
    assert bool(eval_rows(tmp_path / "one")) == (aggregation == "seq_mean_token_mean")
    assert not (tmp_path / "two" / "checkpoints" / "step_000004" / "rng.pt").exists()
    for r in (0, 1):
        rng = tmp_path / "two" / "checkpoints" / "step_000004" / f"rng_rank{r}.pt"
        assert torch.load(rng, weights_only=True)["torch"].dtype == torch.uint8


def test_two_ranks_keep_the_groups_one_process_keeps_under_dynamic_sampling(tmp_path):
    over = {
        "algo.aggregation": "token_mean",
        "algo.dynamic_sampling": True,
        "algo.max_refill_rounds": 2,
        "algo.clip_high": 0.28,
    }
    run(cfg_for(tmp_path, "one", **over))
    run_ranks(tmp_path, ("two", over))
    assert_same_run(tmp_path / "one", tmp_path / "two", [1, 2, 3, 4])
    a, b = metrics_by_step(tmp_path / "one"), metrics_by_step(tmp_path / "two")
    for k in ("group/zero_std_frac", "group/kept_groups", "group/refill_rounds"):
        assert [a[s][k] for s in a] == [b[s][k] for s in b], k
    fracs = [a[s]["group/zero_std_frac"] for s in a]
    assert any(0 < f < 1 for f in fracs), fracs  # the test does exercise the selection


def test_stopping_and_resuming_two_ranks_equals_an_uninterrupted_two_rank_run(tmp_path):
    resume = {"train.resume": str(tmp_path / "parts")}
    run_ranks(tmp_path, ("straight", {}), ("parts", {"train.stop_after": 2}), ("x", resume))
    a, b = metrics_by_step(tmp_path / "straight"), metrics_by_step(tmp_path / "parts")
    assert sorted(b) == [1, 2, 3, 4]
    assert_same_metrics(a, b, steps=(3, 4))
    wa, wb = final_weights(tmp_path / "straight"), final_weights(tmp_path / "parts")
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    state = json.loads(
        (tmp_path / "parts" / "checkpoints" / "step_000002" / "state.json").read_text()
    )
    assert state["world_size"] == 2 and state["data_pos"] == 8  # the global data position

    # the same checkpoint in one process: refused, naming both world sizes
    with pytest.raises(ConfigError, match=r"world size 2.*world size 1"):
        run(cfg_for(tmp_path, "x", **resume))


def test_prompts_that_do_not_split_evenly_over_the_ranks_are_a_config_error(tmp_path):
    cfg = cfg_for(tmp_path, "x", **{"train.prompts_per_step": 3, "algo.minibatches": 1})
    validate(cfg)
    with pytest.raises(ConfigError, match="prompts_per_step=3 is not divisible by the 2"):
        validate(cfg, world=2)


def test_a_slice_of_a_batch_samples_what_the_whole_batch_samples_for_its_rows():
    from rlreason.model.gpt import GPT, GPTConfig
    from rlreason.sampling.engine import generate

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, n_layer=1, n_head=2, d_model=16, max_seq_len=32))
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    whole = generate(model, prompts, n=3, max_new_tokens=6, seed=7, eos_id=0)
    part = generate(
        model, prompts[1:], n=3, max_new_tokens=6, seed=7, eos_id=0, row_offset=3, total_rows=9
    )
    assert part.completion_ids == whole.completion_ids[3:]
    with pytest.raises(ValueError, match="total_rows=8"):
        generate(model, prompts[1:], n=3, max_new_tokens=2, seed=7, row_offset=3, total_rows=8)


def test_rank_metrics_merge_into_the_global_batch_values():
    from rlreason.rl.shard import Rows, merge_metrics

    a = {"reward/x/mean": 1.0, "reward/x/std": 0.0, "reward/x/errors": 1.0, "length_min": 3.0}
    b = {"reward/x/mean": 0.0, "reward/x/std": 0.0, "reward/x/errors": 2.0, "length_min": 2.0}
    out = merge_metrics([a, b], [1, 3])
    assert out["reward/x/mean"] == 0.25 and out["reward/x/errors"] == 3.0
    assert out["length_min"] == 2.0
    assert out["reward/x/std"] == pytest.approx(
        torch.tensor([1.0, 0, 0, 0]).std(unbiased=False).item()
    )
    assert Rows([4, 5, 8, 9], 12).local([9, 0, 4, 7]) == [3, 0]


@pytest.mark.slow
def test_torchrun_runs_rlreason_train_on_two_ranks_and_rank_zero_writes_the_run(tmp_path):
    import subprocess
    import sys

    torchrun = Path(sys.executable).with_name("torchrun")
    overrides = [
        "model=scratch",
        "model.n_layer=2",
        "model.n_head=2",
        "model.d_model=32",
        "model.max_seq_len=128",
        "sampling.max_new_tokens=16",
        "train.steps=3",
        "train.prompts_per_step=4",
        "train.save_every=0",
        "train.threads=1",
        "train.progress=false",
        "algo.group_size=4",
        "eval.n_problems=4",
        "eval.every=0",
        "log.wandb.mode=disabled",
        f"log.run_dir={tmp_path / 'run'}",
    ]
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "--no-python", "rlreason-train"]
    out = subprocess.run(cmd + overrides, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "model.json", "summary.json", "report.md", "metrics.jsonl"):
        assert (run_dir / name).is_file(), name
    ckpt = run_dir / "checkpoints" / "step_000003"
    assert {p.name for p in ckpt.glob("rng_rank*.pt")} == {"rng_rank0.pt", "rng_rank1.pt"}
    odd = [o.replace("prompts_per_step=4", "prompts_per_step=3") for o in overrides]
    bad = subprocess.run(
        cmd + odd[:-1] + [f"log.run_dir={tmp_path / 'bad'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0
    assert "[rlreason rank 1] invalid configuration" in bad.stderr + bad.stdout
