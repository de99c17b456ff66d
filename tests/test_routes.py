"""The routes experiment's plan, stage configs, compute accounting and tables (stubbed jobs)."""

import json

import pytest
import yaml

from experiments.routes import compute, stages, table
from rlreason.config import Config, ConfigError


def routes_cfg(**routes) -> Config:
    cfg = Config()
    cfg.name = "r"
    for k, v in routes.items():
        setattr(cfg.routes, k, v)
    return cfg


def test_all_routes_plan_every_stage_after_the_stages_it_needs(tmp_path):
    names = [s.name for s in stages.plan(routes_cfg(), tmp_path)]
    assert names == ["pure_rl", "traces", "sft_cold", "sft_rl", "distill_sft", "distill_onpolicy"]


@pytest.mark.parametrize(
    "routes, expected",
    [
        (["base", "student_base"], []),
        (["pure_rl"], ["pure_rl"]),
        (["distill_sft"], ["pure_rl", "traces", "distill_sft"]),
        (["sft_rl"], ["pure_rl", "traces", "sft_cold", "sft_rl"]),
        (["distill_onpolicy"], ["pure_rl", "distill_onpolicy"]),
        (["r1"], ["pure_rl", "traces", "sft_cold", "sft_rl", "traces_r1", "sft_r1", "r1"]),
    ],
)
def test_a_subset_of_routes_plans_only_the_stages_it_needs(tmp_path, routes, expected):
    assert [s.name for s in stages.plan(routes_cfg(routes=routes), tmp_path)] == expected


def test_a_stage_config_carries_its_job_directory_and_overrides(tmp_path):
    cfg = routes_cfg(sft_steps=77, sft_lr=2e-3, student="base_small")
    by = {s.name: s for s in stages.plan(cfg, tmp_path)}
    sft_rl = stages.derive(cfg, by["sft_rl"], tmp_path)
    assert (sft_rl.job, sft_rl.model.source) == ("rl", "run")
    assert sft_rl.model.path == str(tmp_path / "sft_cold")
    assert sft_rl.log.run_dir == str(tmp_path / "sft_rl")
    assert sft_rl.eval.every == cfg.routes.rl_eval_every
    student = stages.derive(cfg, by["distill_sft"], tmp_path)
    assert (student.job, student.model.source, student.train.steps) == ("sft", "base_small", 77)
    assert student.optim.lr == 2e-3 and student.optim.min_lr == pytest.approx(2e-4)
    assert student.sft.data == str(tmp_path / "traces" / "samples.jsonl")
    onp = stages.derive(cfg, by["distill_onpolicy"], tmp_path)
    assert onp.algo.advantage == "onpolicy_distill" and onp.teacher.source == "run"
    assert onp.teacher.path == str(tmp_path / "pure_rl") and onp.model.source == "base_small"
    assert cfg.job == "rl" and cfg.model.source == "base"  # the routes config is not changed


def test_an_unknown_override_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no config key train.stepz"):
        stages.derive(Config(), stages.Stage("x", "rl", {"train.stepz": 3}), tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: setattr(c.routes, "routes", ["pure_rl", "nope"]), "unknown"),
        (lambda c: setattr(c.routes, "sample_n", 0), "routes.sample_n"),
        (lambda c: setattr(c.routes, "target", 1.5), "routes.target"),
        (lambda c: setattr(c.train, "resume", "/x"), "train.resume"),
        (lambda c: setattr(c.eval, "n_problems", 0), "eval.n_problems"),
    ],
)
def test_bad_routes_settings_fail_before_any_stage_runs(change, message):
    cfg = Config()
    change(cfg)
    with pytest.raises(ConfigError, match=message):
        stages.check(cfg)


def write_rl_stage(d, lengths, evals, P=2, G=3, step_s=0.5, opt=2.0):
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(
        yaml.safe_dump({"train": {"prompts_per_step": P}, "algo": {"group_size": G}})
    )
    rows = [{"step": 0, "eval/greedy_acc": evals[0]}]
    for i, n in enumerate(lengths, 1):
        rows.append(
            {
                "step": i,
                "rollout/length_mean": n,
                "perf/step_s": step_s,
                "train/optimizer_steps": opt,
            }
        )
        if i in evals:
            rows.append({"step": i, "eval/greedy_acc": evals[i]})
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_an_rl_stage_is_charged_its_rollout_tokens_steps_and_seconds(tmp_path):
    write_rl_stage(tmp_path / "s", [10.0, 20.0, 30.0], {0: 0.1, 2: 0.6, 3: 0.9})
    s = compute.stage_spent(tmp_path / "s", "rl", {})
    assert s.tokens == pytest.approx((10 + 20 + 30) * 6)  # length_mean x P x G per step
    assert (s.optimizer_steps, s.seconds) == (6.0, 1.5)
    assert s.curve == [(0, 0.0, 0.0, 0.1), (2, 180.0, 1.0, 0.6), (3, 360.0, 1.5, 0.9)]
    assert compute.steps_to(s.curve, 0.6) == 2 and compute.steps_to(s.curve, 0.95) is None
    assert compute.steps_to(s.curve, 0.05) == 0


def test_a_sampling_stage_is_charged_its_generated_tokens():
    s = compute.stage_spent(None, "sample", {"generated_tokens": 1234, "seconds": 7.5})
    assert (s.tokens, s.seconds, s.optimizer_steps) == (1234.0, 7.5, 0.0)


def fake_metrics(greedy):
    keys = {
        "greedy_acc": greedy,
        "pass@1": greedy / 2,
        "maj@4": greedy,
        "best_of_4": 1.0,
        "beam_acc": greedy,
        "format_rate": 0.5,
        "length_mean": 9.0,
    }
    return {f"eval/tiny/{k}": v for k, v in keys.items()}


def test_routes_json_charges_each_route_for_the_stages_it_needs(tmp_path):
    cfg = routes_cfg(routes=["base", "pure_rl", "distill_onpolicy"], target=0.9)
    write_rl_stage(tmp_path / "pure_rl", [10.0, 10.0], {0: 0.1, 1: 0.5, 2: 0.8})
    write_rl_stage(tmp_path / "distill_onpolicy", [5.0], {0: 0.0, 1: 0.9})
    evals = {
        "base": fake_metrics(0.1),
        "pure_rl": fake_metrics(0.8),
        "distill_onpolicy": fake_metrics(0.9),
    }
    result = table.build(cfg, tmp_path, {"pure_rl": {}, "distill_onpolicy": {}}, evals)
    r = result["routes"]
    assert r["base"]["tokens"] == 0 and r["base"]["rl_steps_to_0.9"] is None
    assert r["pure_rl"]["tokens"] == 120 and r["pure_rl"]["optimizer_steps"] == 4
    assert r["pure_rl"]["rl_steps_to_0.9"] is None and r["pure_rl"]["rl_steps_to_pure_rl"] == 2
    assert r["distill_onpolicy"]["tokens"] == 120 + 30  # the teacher's RL is charged too
    assert r["distill_onpolicy"]["rl_steps_to_0.9"] == 1
    assert r["distill_onpolicy"]["stages"] == ["pure_rl", "distill_onpolicy"]
    assert r["pure_rl"]["greedy"] == 0.8 and r["pure_rl"]["maj@4"] == 0.8
    md = table.markdown(result, 4, None)
    assert "| distill_onpolicy | 0.900 |" in md


def test_run_stages_skips_stages_that_finished_and_redoes_one_cut_short(tmp_path, monkeypatch):
    calls = []

    def fake_job(job):
        def run(cfg, arm):
            calls.append(arm)
            d = tmp_path / arm
            d.mkdir(parents=True, exist_ok=True)
            name = "sample.json" if job == "sample" else "summary.json"
            (d / name).write_text(json.dumps({"stage": arm}))
            return {"stage": arm}

        return run

    import experiments.jobs as jobs

    monkeypatch.setattr(jobs, "get_job", fake_job)
    cfg = routes_cfg(routes=["distill_sft"])
    (tmp_path / "pure_rl").mkdir()
    (tmp_path / "pure_rl" / "summary.json").write_text(json.dumps({"stage": "old"}))
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "partial.txt").write_text("cut short")
    done = stages.run_stages(cfg, tmp_path, say=lambda *a: None)
    assert calls == ["traces", "distill_sft"]
    assert done["pure_rl"] == {"stage": "old"}
    assert not (tmp_path / "traces" / "partial.txt").exists()


def test_the_report_averages_each_route_over_seeds_with_a_t_interval(tmp_path):
    from experiments.report.routes import routes_markdown, write_routes_comparison

    for seed, (g, steps) in enumerate([(0.8, 10), (0.9, None), (1.0, 20)], 1):
        d = tmp_path / f"seed{seed}"
        d.mkdir()
        route = {"greedy": g, "maj@4": g, "rl_steps_to_0.95": steps, "tokens": 100 * seed}
        route.update({"optimizer_steps": 5, "seconds": 1.0, "stages": ["pure_rl"]})
        (d / "routes.json").write_text(json.dumps({"routes": {"pure_rl": route}, "seed": seed}))
    result = write_routes_comparison([tmp_path], tmp_path / "out")
    row = result["routes"]["pure_rl"]
    assert result["metrics"] == ["greedy", "maj@4"]
    assert row["greedy"]["mean"] == pytest.approx(0.9) and row["greedy"]["n"] == 3
    # t(0.975, 2) = 4.303; std 0.1; half-width 4.303 * 0.1 / sqrt(3)
    assert row["greedy"]["ci"] == pytest.approx(4.3027 * 0.1 / 3**0.5, rel=1e-3)
    assert row["rl_steps_to_0.95"]["mean"] == 15 and row["rl_steps_to_0.95"]["reached"] == 2
    assert row["tokens"]["mean"] == 200
    assert "| pure_rl | 0.900 ± 0.248 |" in routes_markdown(result)
    assert (tmp_path / "out" / "routes_comparison.md").is_file()


TINY_ROUTES = [
    "experiment=r1_routes_tiny",
    "model=scratch",
    "model.n_layer=1",
    "model.n_head=2",
    "model.d_model=32",
    "model.max_seq_len=64",
    "routes.student=scratch",
    "env.n_train=12",
    "env.n_eval=4",
    "train.steps=2",
    "train.prompts_per_step=2",
    "train.save_every=0",
    "algo.group_size=2",
    "sampling.max_new_tokens=10",
    "routes.sample_n=2",
    "routes.sample_problems=4",
    "sample.accept=[]",  # a random model is never right: keep every trace
    "routes.sft_steps=2",
    "routes.distill_steps=2",
    "routes.rl_eval_every=1",
    "sft.batch_size=2",
    "eval.n_problems=3",
    "eval.beam_width=2",
    "eval.n_boot=20",
    "log.wandb.mode=disabled",
]


def compose_routes(*overrides):
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    conf = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())
    register()
    with initialize_config_dir(conf, version_base=None):
        return OmegaConf.to_object(compose("config", overrides=[*TINY_ROUTES, *overrides]))


def test_the_routes_job_runs_every_stage_and_writes_the_documented_tables(tmp_path, capsys):
    from experiments.jobs import get_job

    every = "[base,student_base,pure_rl,sft_rl,distill_sft,distill_onpolicy,r1]"
    cfg = compose_routes(f"log.run_dir={tmp_path / 'r'}", f"routes.routes={every}")
    assert cfg.job == "routes"
    result = get_job("routes")(cfg, "")
    root = tmp_path / "r"
    saved = json.loads((root / "routes.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert list(saved["routes"]) == list(cfg.routes.routes)
    for name, m in saved["routes"].items():
        for key in ("greedy", "pass@1", "maj@4", "format"):
            assert 0.0 <= m[key] <= 1.0, (name, key)
        assert isinstance(m["tokens"], int) and isinstance(m["seconds"], float)
        assert "rl_steps_to_0.95" in m
    r = saved["routes"]
    assert r["base"]["tokens"] == 0 and r["base"]["stages"] == []
    assert r["pure_rl"]["optimizer_steps"] == 2 * 2  # 2 steps x 2 epochs
    assert r["sft_rl"]["tokens"] > r["pure_rl"]["tokens"]  # it pays for pure_rl and the traces
    assert r["distill_sft"]["rl_steps_to_0.95"] is None  # no RL in the route
    assert r["r1"]["stages"][-3:] == ["traces_r1", "sft_r1", "r1"]
    r1_teacher = json.loads((root / "traces_r1" / "sample.json").read_text())["teacher"]
    assert r1_teacher["run_dir"] == str(root / "sft_rl")  # round 2 samples the SFT+RL policy
    assert r["r1"]["tokens"] > r["sft_rl"]["tokens"]
    traces = (root / "traces" / "samples.jsonl").read_text().splitlines()
    assert traces and all({"prompt", "completion"} <= set(json.loads(x)) for x in traces)
    onp = yaml.safe_load((root / "distill_onpolicy" / "config.yaml").read_text())
    assert onp["algo"]["advantage"] == "onpolicy_distill"
    assert onp["teacher"] == {**onp["teacher"], "source": "run", "path": str(root / "pure_rl")}
    logged = (root / "distill_onpolicy" / "metrics.jsonl").read_text()
    assert '"distill/reverse_kl"' in logged  # the teacher scored the student's tokens
    md = (root / "routes.md").read_text()
    assert md.count("\n| ") >= 7 + 9  # a row per route and per stage
    assert (root / "routes_compute.png").read_bytes()[:4] == b"\x89PNG"
    # the same command again reuses every stage and evaluation
    capsys.readouterr()
    get_job("routes")(compose_routes(f"log.run_dir={root}", f"routes.routes={every}"), "")
    out = capsys.readouterr().out
    assert out.count("already ran") == 9 and "evaluating" not in out


def test_own_stages_of_a_route_start_after_the_result_of_another_route():
    chain = ["pure_rl", "traces", "sft_cold", "sft_rl"]
    assert table._own_start(chain, "sft_rl") == 1
    assert table._own_start(["pure_rl"], "pure_rl") == 0
