"""rlreason-sweep: Hydra's job list, device pinning, and jobs run at once as subprocesses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from experiments import launcher, sweep
from experiments.launcher import (
    Slot,
    default_jobs,
    failure_report,
    job_command,
    launch,
    plan_slots,
    resolve_devices,
    visible_gpus,
)

CONF = Path(sweep.__file__).resolve().parent / "conf"
TINY = [
    "train.steps=1",
    "train.prompts_per_step=1",
    "algo.group_size=2",
    "sampling.max_new_tokens=4",
    "eval.n_problems=0",
    "model=scratch",
    "model.n_layer=1",
    "model.d_model=32",
    "model.n_head=2",
    "log.wandb.mode=disabled",
]


def hydra_multirun_jobs(overrides, tmp_path, monkeypatch) -> list[list[str]]:
    """The task overrides of each job of `rlreason-train -m <overrides>`, from Hydra itself."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from experiments.schema import register

    register()
    seen = []
    monkeypatch.chdir(tmp_path)  # the multirun writes multirun.yaml into hydra.sweep.dir (.)
    monkeypatch.setattr(sys, "argv", ["rlreason-train", "-m", *overrides])
    record = lambda cfg: seen.append(list(HydraConfig.get().overrides.task))
    hydra.main(config_path=str(CONF), config_name="config", version_base=None)(record)()
    return seen


@pytest.mark.parametrize(
    "overrides",
    [
        ["seed=1,2,3"],
        ["reward.format.weight=0,0.1", "seed=1,2,3"],
        ["experiment=ablate_rewards"],
        ["experiment=ablate_rewards", "seed=4", "train.steps=3"],
        ["algo=grpo,dapo", "seed=range(1,3)", "+train.stop_after=2"],
    ],
)
def test_the_sweep_expands_to_the_same_jobs_as_hydra_multirun(overrides, tmp_path, monkeypatch):
    want = hydra_multirun_jobs(overrides, tmp_path, monkeypatch)
    got = sweep.expand(overrides, compose_jobs=False)
    assert got.jobs == want and got.hydra == []


def test_each_job_is_composed_and_one_that_does_not_compose_is_named():
    s = sweep.expand(["seed=1,oops", "model=scratch"])
    assert [c.seed if c is not None else None for c in s.configs] == [1, None]
    assert list(s.errors) == [1] and "seed=oops" in s.errors[1]


def test_jobs_that_differ_only_outside_the_arm_are_flagged_as_sharing_a_run_directory():
    assert sweep.shared_run_dirs(sweep.expand(["train.steps=5,6", "model=scratch"])) == [[0, 1]]
    assert sweep.shared_run_dirs(sweep.expand(["seed=1,2", "model=scratch"])) == []


def test_gpu_slots_pin_one_device_each_round_robin_over_a_fake_gpu_count():
    gpus = visible_gpus(count=3, env={})
    slots = plan_slots(5, "cuda", gpus, cores=16)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "2", "0", "1"]
    assert [s.device for s in slots] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert all(s.env["OMP_NUM_THREADS"] == "3" and s.overrides == () for s in slots)


def test_visible_gpus_follow_cuda_visible_devices_when_it_is_set():
    gpus = visible_gpus(count=8, env={"CUDA_VISIBLE_DEVICES": "3,5"})
    assert gpus == ["3", "5"]
    pinned = [s.env["CUDA_VISIBLE_DEVICES"] for s in plan_slots(3, "cuda", gpus, cores=4)]
    assert pinned == ["3", "5", "3"]
    assert visible_gpus(count=8, env={"CUDA_VISIBLE_DEVICES": ""}) == []
    assert resolve_devices("auto", []) == "cpu" and resolve_devices("auto", gpus) == "cuda"
    with pytest.raises(ValueError, match="no GPU"):
        resolve_devices("cuda", [])


def test_cpu_slots_give_each_job_one_thread_and_hide_the_gpus():
    slots = plan_slots(2, "cpu", ["0"], cores=2)
    for s in slots:
        assert s.device == "cpu" and s.overrides == ("train.threads=1",)
        assert s.env == {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_a_job_that_sets_train_threads_keeps_its_own_value():
    slot = plan_slots(1, "cpu", [], cores=2)[0]
    assert job_command(["t"], ["seed=1"], slot) == ["t", "seed=1", "train.threads=1"]
    assert job_command(["t"], ["train.threads=2"], slot) == ["t", "train.threads=2"]


def test_the_default_job_count_is_one_per_gpu_else_one_per_core_at_most_the_jobs():
    assert default_jobs(9, "cuda", ["0", "1"], cores=16) == 2
    assert default_jobs(9, "cpu", [], cores=4) == 4
    assert default_jobs(3, "cpu", [], cores=16) == 3
    assert default_jobs(0, "cpu", [], cores=16) == 1


def test_the_base_model_is_built_once_before_the_jobs_only_when_a_job_needs_it(monkeypatch):
    from experiments.demo import pretrain

    built = []
    monkeypatch.setattr(pretrain, "is_built", lambda d: False)
    monkeypatch.setattr(pretrain, "ensure_base", lambda *a, **k: built.append(1))
    job = lambda source: SimpleNamespace(model=SimpleNamespace(source=source))
    sweep.prebuild_base([job("scratch"), None], echo=lambda s: None)
    assert built == []
    sweep.prebuild_base([job("base"), job("base"), job("scratch")], echo=lambda s: None)
    assert built == [1]


SLEEP_AND_SHOW_DEVICE = [
    sys.executable,
    "-c",
    "import os, sys, time; time.sleep(float(sys.argv[1])); print(os.environ.get('CUDA_VISIBLE_DEVICES', '-'))"
    "; sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)",
]


def test_a_freed_slot_goes_to_the_next_job_which_sees_only_its_device(tmp_path):
    slots = plan_slots(2, "cuda", visible_gpus(count=2, env={}), cores=2)
    lines = []
    jobs = [["2.0"], ["0.1"], ["0.1"]]
    records = launch(jobs, slots, SLEEP_AND_SHOW_DEVICE, tmp_path, lines.append)
    assert [r.device for r in records] == ["cuda:0", "cuda:1", "cuda:1"]
    assert [Path(r.log).read_text().strip() for r in records] == ["0", "1", "1"]
    assert records[2].start >= records[1].end and records[2].end < records[0].end
    assert len(lines) == 6  # one line as each job starts, one as it ends
    assert json.loads((tmp_path / "jobs.json").read_text())[2]["returncode"] == 0


def test_the_failure_report_names_each_failed_job_and_its_log(tmp_path):
    slots = [Slot(0, "cpu", {}), Slot(1, "cpu", {})]
    records = launch([["0", "3"], ["0"]], slots, SLEEP_AND_SHOW_DEVICE, tmp_path, lambda s: None)
    assert [r.returncode for r in records] == [3, 0]
    report = failure_report(records)
    assert "1 of 2 jobs failed" in report
    assert f"job 1: 0 3 (exit 3), log: {records[0].log}" in report
    assert failure_report(records[1:]) == ""


def run_dir_tail(job: list[str], seed: int) -> str:
    """`<arm>-seed<seed>`: the part of a run directory's name after the time stamp."""
    from experiments.build import arm_label
    from experiments.train import arm_name

    return f"{arm_label(arm_name(job))}-seed{seed}"


@pytest.mark.timeout(240)
def test_three_tiny_jobs_run_at_once_each_with_one_thread_and_its_own_run_directory(tmp_path):
    from omegaconf import OmegaConf

    runs, logs = tmp_path / "runs", tmp_path / "logs"
    overrides = ["seed=1,2,3", *TINY, f"log.out_dir={runs}"]
    argv = ["--jobs", "3", "--devices", "cpu", "--logs", str(logs), *overrides]
    assert sweep.main(argv) == 0
    records = json.loads((logs / "jobs.json").read_text())
    jobs = sweep.expand(overrides, compose_jobs=False).jobs
    dirs = [Path(r["run_dir"]) for r in records]
    assert len(set(dirs)) == 3 and all(d.parent == runs / "r1_zero_tiny" for d in dirs)
    for k, (d, r) in enumerate(zip(dirs, records)):
        assert d.name.split("-", 2)[2] == run_dir_tail(jobs[k], k + 1)  # the arm label of -m
        assert OmegaConf.load(d / "config.yaml").train.threads == 1
        assert r["env"]["OMP_NUM_THREADS"] == "1" and (d / "summary.json").is_file()
    trained_from = [(d / "config.yaml").stat().st_mtime for d in dirs]  # written before step 1
    assert max(trained_from) < min(r["end"] for r in records)  # all three training at once


@pytest.mark.timeout(240)
def test_a_failing_job_fails_the_sweep_by_name_while_the_others_finish(tmp_path, capsys):
    logs = tmp_path / "logs"
    argv = ["--jobs", "2", "--devices", "cpu", "--logs", str(logs)]
    assert sweep.main([*argv, "seed=1,oops", *TINY, f"log.out_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    records = json.loads((logs / "jobs.json").read_text())
    assert records[0]["returncode"] == 0
    assert (Path(records[0]["run_dir"]) / "summary.json").is_file()
    assert records[1]["returncode"] != 0
    assert "job 2: seed=oops" in err and records[1]["log"] in err
    assert "seed=oops" in Path(records[1]["log"]).read_text()


def test_a_sweep_that_cannot_expand_or_compose_exits_2(capsys):
    assert sweep.main(["--dry-run", "no_such_key=1,2"]) == 2
    assert sweep.main(["--dry-run", "hydra/sweeper=nope"]) == 2
    assert launcher.DEVICES == ("auto", "cpu", "cuda")
