"""`train.parallel=fsdp2`: 2 Gloo ranks with sharded weights compute what one process computes.

The harness is tests/test_distributed.py's (spawned Gloo ranks, configs as overrides). Sharded
ranks sum their gradient shards with reduce-scatters (in another order than one process's
micro-batch loop), so equality with one process is up to float32 rounding: rtol 1e-5, atol 1e-6
(test_distributed's tolerances; measured differences are printed). A resumed sharded run equals
an uninterrupted one exactly (same world size, same reduction order).
The trainer runs generation and the no-grad passes inside `fsdp.gathered` (each rank unshards
once): otherwise ranks that decode a different number of steps would deadlock in FSDP's
per-forward all-gathers.
"""

import json
import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from experiments.train import build_trainer, run
from rlreason.config import ConfigError
from tests.test_distributed import (
    _free_port,
    _rank,
    assert_same_run,
    cfg_for,
    final_weights,
)
from tests.test_rl_trainer import assert_same_metrics, metrics_by_step

FSDP = {"train.parallel": "fsdp2"}
IDS = [[1, 5, 7, 2, 9, 3], [4, 4, 8, 1, 0, 2]]


def _fsdp_rank(rank, world, tmp_path, runs, ports) -> None:
    _rank(rank, world, tmp_path, runs, ports)


def _logits_rank(rank, world, tmp_path, name, over, port) -> None:
    """Resume run `name` (overrides `over`) sharded; write rank 0's logits of IDS."""
    os.environ.update(MASTER_ADDR="127.0.0.1", WORLD_SIZE=str(world), RANK=str(rank))
    os.environ.update(LOCAL_RANK=str(rank), MASTER_PORT=str(port))
    trainer = build_trainer(
        cfg_for(tmp_path, name, **over, **{"train.resume": str(tmp_path / name)})
    )
    with torch.no_grad():
        logits = trainer.model(torch.tensor(IDS))  # (2, 6, V), blocks gathered one by one
    if rank == 0:
        torch.save(logits, tmp_path / "sharded_logits.pt")
    trainer.dist.close()


def run_fsdp_ranks(tmp_path: Path, *runs: tuple[str, dict], world: int = 2) -> None:
    ports = [_free_port() for _ in runs]
    mp.spawn(_fsdp_rank, args=(world, tmp_path, list(runs), ports), nprocs=world, join=True)


def optimizer_state(run_dir: Path) -> dict:
    d = run_dir / (run_dir / "latest").read_text().strip()
    return torch.load(d / "optimizer.pt", weights_only=True)


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean"])
def test_two_sharded_ranks_compute_the_steps_and_weights_of_one_process(tmp_path, aggregation):
    over = {"algo.aggregation": aggregation}
    if aggregation == "token_mean":  # uneven micro-batch counts per rank: zero backwards
        over["algo.micro_batch_tokens"] = 24
    else:  # and the held-out evaluation, gathered
        over.update({"eval.n_problems": 4, "eval.every": 2})
    run(cfg_for(tmp_path, "one", **over))
    run_fsdp_ranks(tmp_path, ("two", {**over, **FSDP}))
    diffs = assert_same_run(tmp_path / "one", tmp_path / "two", [1, 2, 3, 4])
    assert diffs["weights"] < 1e-6
    # the same checkpoint layout: optimizer state by parameter index, full tensors
    a, b = optimizer_state(tmp_path / "one"), optimizer_state(tmp_path / "two")
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            torch.testing.assert_close(b["state"][i][k], v, rtol=1e-4, atol=1e-6)


def test_a_kl_term_with_a_sharded_reference_steps_as_replicated_ranks_do(tmp_path):
    """Against replicated ranks, not one process: with KL, AdamW turns the ~1e-9 rounding of a
    near-zero gradient entry into ~3e-6 on its weight in both data-parallel modes alike."""
    over = {"algo.kl_coef": 0.05}
    run_fsdp_ranks(tmp_path, ("rep", over), ("two", {**over, **FSDP}))
    diffs = assert_same_run(tmp_path / "rep", tmp_path / "two", [1, 2, 3, 4])
    a = metrics_by_step(tmp_path / "two")
    assert all(a[s]["policy/kl"] != 0 for s in a)
    assert diffs["weights"] < 1e-6


def test_a_stopped_and_resumed_sharded_run_equals_an_uninterrupted_one(tmp_path):
    parts = {**FSDP, "train.stop_after": 2}
    resume = {**FSDP, "train.resume": str(tmp_path / "parts")}
    run_fsdp_ranks(tmp_path, ("straight", FSDP), ("parts", parts), ("x", resume))
    a, b = metrics_by_step(tmp_path / "straight"), metrics_by_step(tmp_path / "parts")
    assert sorted(b) == [1, 2, 3, 4]
    assert_same_metrics(a, b, steps=(3, 4))
    wa, wb = final_weights(tmp_path / "straight"), final_weights(tmp_path / "parts")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    state = json.loads(
        (tmp_path / "parts" / "checkpoints" / "step_000002" / "state.json").read_text()
    )
    assert state["world_size"] == 2


def test_a_sharded_checkpoint_loads_into_an_unsharded_model_with_the_same_logits(tmp_path):
    from experiments.teacher import load_run_policy

    over = {**FSDP, "model.flavour": "gpt2", "train.steps": 2}  # tied embeddings
    run_fsdp_ranks(tmp_path, ("two", over))
    model, _, info = load_run_policy(tmp_path / "two")
    assert info["step"] == 2 and model.config.tie_embeddings
    assert model.lm_head.weight is model.tok_emb.weight
    mp.spawn(_logits_rank, args=(2, tmp_path, "two", over, _free_port()), nprocs=2, join=True)
    with torch.no_grad():
        plain = model(torch.tensor(IDS))
    torch.testing.assert_close(torch.load(tmp_path / "sharded_logits.pt"), plain)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"lora.enabled": True}, "use train.parallel=replicate"),
        ({"algo.advantage": "gae"}, "value head"),
        ({"model.dtype": "float16"}, "float16"),
        ({}, r"world size 1: fsdp2 needs torchrun with >= 2 processes"),
        ({"train.parallel": "zero3"}, "train.parallel='zero3'"),
    ],
)
def test_unsupported_fsdp2_combinations_are_config_errors(tmp_path, over, match):
    with pytest.raises(ConfigError, match=match):
        build_trainer(cfg_for(tmp_path, "x", **{**FSDP, **over}))
    assert not (tmp_path / "x").exists()  # refused before the run directory (and the model)
