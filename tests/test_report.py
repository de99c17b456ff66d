"""Run reports and the cross-run comparison, on hand-made run directories with known values."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from experiments.report import (
    Run,
    group_arms,
    load_run,
    main,
    read_metrics,
    write_comparison,
    write_report,
)
from experiments.report.plots import mean_ci, smooth, steps_to_target, t975

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T2 = 4.302652730  # t(0.975, df=2): three seeds


def write_run(
    path: Path, *, seed=1, format_weight=0.1, gated_by=None, evals=None, train=None, summary=None
) -> Path:
    """A run directory like experiments/train.py leaves it: config.yaml, metrics.jsonl, summary.json."""
    path.mkdir(parents=True)
    config = {
        "name": "ablate",
        "seed": seed,
        "log": {"run_dir": str(path), "wandb": {"mode": "disabled"}},
        "train": {"steps": 4, "progress": False},
        "reward": {
            "math": {"weight": 1.0, "options": {}},
            "format": {"weight": format_weight, "options": {}},
        },
        "reward_gate": gated_by,
    }
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [{"step": s, **m} for s, m in sorted((train or {}).items())]
    rows += [{"step": s, **m} for s, m in sorted((evals or {}).items())]
    rows.sort(key=lambda r: r["step"])
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def evals(greedy, sampled, fmt=1.0, length=10.0):
    """Eval rows at steps 0, 2, 4 with the given greedy / pass@1 values (a str is written as is)."""
    return {
        step: {
            "eval/greedy_acc": g,
            "eval/pass@1": p,
            "eval/pass@1_lo": 0.0,
            "eval/pass@1_hi": 1.0,
            "eval/format_rate": fmt,
            "eval/length_mean": length,
        }
        for step, g, p in zip((0, 2, 4), greedy, sampled)
    }


def train_rows(acc):
    return {
        s: {
            "accuracy": a,
            "reward/total/mean": a,
            "reward/math/mean": a,
            "reward/format/mean": 0.5,
            "rollout/length_mean": 12.0,
            "rollout/think_rate": 0.5,
            "policy/kl": 0.01 * s,
            "policy/entropy": 2.0,
            "lr": 1e-4,
        }
        for s, a in zip((1, 2, 3, 4), acc)
    }


@pytest.fixture
def ablation(tmp_path):
    """Two arms (format weight 0.0 / 0.1) x three seeds, in one parent folder."""
    arm_a = [
        ([0.1, 0.5, 0.5], [0.1, 0.3, 0.4]),
        ([0.2, 0.6, 0.6], [0.1, 0.4, 0.5]),
        ([0.3, 0.9, 0.7], [0.1, 0.5, 0.6]),
    ]
    arm_b = [
        ([0.0, 0.9, 0.95], [0.0, 0.6, 0.7]),
        ([0.0, 0.8, 0.9], [0.0, 0.7, 0.8]),
        ([0.0, 0.7, 0.8], [0.0, 0.6, "nan"]),
    ]  # seed 3's last pass@1 is non-finite
    root = tmp_path / "runs"
    for weight, arm in ((0.0, arm_a), (0.1, arm_b)):
        for seed, (greedy, sampled) in enumerate(arm, 1):
            write_run(
                root / f"w{weight}-seed{seed}",
                seed=seed,
                format_weight=weight,
                evals=evals(greedy, sampled, fmt=0.5 + weight, length=20.0 + seed),
                train=train_rows([0.1, 0.2, 0.3, 0.4]),
            )
    return root


def _arms(result):
    return {a["label"]: a for a in result["arms"]}


def test_arm_means_and_t_intervals_match_hand_computed_values(ablation, tmp_path):
    write_comparison([ablation], tmp_path / "cmp", target=0.9, plots=False)
    arms = _arms(json.loads((tmp_path / "cmp" / "comparison.json").read_text()))
    assert sorted(arms) == ["reward.format.weight=0.0", "reward.format.weight=0.1"]
    a, b = arms["reward.format.weight=0.0"], arms["reward.format.weight=0.1"]
    assert a["n"] == b["n"] == 3 and sorted(a["seeds"]) == [1, 2, 3]
    # arm A final greedy 0.5, 0.6, 0.7: mean 0.6, s = 0.1
    assert a["final"]["eval/greedy_acc"]["mean"] == pytest.approx(0.6)
    assert a["final"]["eval/greedy_acc"]["ci"] == pytest.approx(T2 * 0.1 / math.sqrt(3))
    # arm B final greedy 0.95, 0.9, 0.8
    m = (0.95 + 0.9 + 0.8) / 3
    s = math.sqrt(((0.95 - m) ** 2 + (0.9 - m) ** 2 + (0.8 - m) ** 2) / 2)
    assert b["final"]["eval/greedy_acc"]["mean"] == pytest.approx(m)
    assert b["final"]["eval/greedy_acc"]["ci"] == pytest.approx(T2 * s / math.sqrt(3))
    # sampled: the last *finite* pass@1 counts (seed 3 of arm B logged "nan" at the end -> 0.6)
    assert b["final"]["eval/pass@1"]["values"] == pytest.approx([0.7, 0.8, 0.6])
    assert b["final"]["eval/pass@1"]["ci"] == pytest.approx(T2 * 0.1 / math.sqrt(3))
    assert a["final"]["eval/format_rate"]["mean"] == pytest.approx(0.5)
    assert b["final"]["eval/length_mean"]["mean"] == pytest.approx(22.0)


def test_steps_to_target_counts_first_eval_at_or_above_and_seeds_that_never_reach(
    ablation, tmp_path
):
    arms = _arms(write_comparison([ablation], tmp_path / "cmp", target=0.9, plots=False))
    a = arms["reward.format.weight=0.0"]["steps_to_target"]
    b = arms["reward.format.weight=0.1"]["steps_to_target"]
    assert (
        a["values"] == [None, None, 2] and a["mean"] == 2 and (a["reached"], a["never"]) == (1, 2)
    )
    assert b["values"] == [2, 4, None] and b["mean"] == 3 and (b["reached"], b["never"]) == (2, 1)
    write_comparison([ablation], tmp_path / "cmp99", target=0.99, plots=False)
    never = _arms(json.loads((tmp_path / "cmp99" / "comparison.json").read_text()))
    assert all(
        x["steps_to_target"]["mean"] is None and x["steps_to_target"]["never"] == 3
        for x in never.values()
    )
    assert "| never |" in (tmp_path / "cmp99" / "comparison.md").read_text()
    write_comparison([ablation], tmp_path / "typo", metric="eval/greedy", plots=False)
    assert "no run logged `eval/greedy`" in (tmp_path / "typo" / "comparison.md").read_text()


def test_cli_expands_a_parent_folder_and_writes_markdown_json_and_png_curves(
    ablation, tmp_path, capsys
):
    out = tmp_path / "cmp"
    assert main([str(ablation), "--out", str(out)]) == 0
    md = (out / "comparison.md").read_text()
    assert "| reward.format.weight=0.0 | 3 | 0.600 ± 0.248 |" in md
    for name in ("greedy_accuracy", "sampled_accuracy", "train_accuracy", "format_rate", "length"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert f"({name}.png)" in md
    assert "reward.format.weight=0.1: 3 runs" in capsys.readouterr().out


def test_cli_default_output_folder_sits_beside_the_runs(ablation):
    assert main([str(ablation / "w0.0-seed1"), str(ablation / "w0.1-seed2"), "--no-plots"]) == 0
    assert (ablation / "comparison" / "comparison.json").is_file()


def test_cli_names_a_missing_run_directory(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "nope: no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def _run(seed, **config):
    return Run(
        Path(f"r{seed}-{sorted(config.items())}"), {}, {}, {"seed": seed, "name": "x", **config}
    )


def test_arm_labels_list_only_the_config_keys_that_differ():
    runs = [
        _run(s, **{"reward.format.weight": w, "reward_gate": g, "log.run_dir": f"d{s}{w}{g}"})
        for s in (1, 2)
        for w, g in ((0.0, None), (0.1, None), (0.0, "format"))
    ]
    arms = group_arms(runs)
    assert [a.label for a in arms] == [
        "reward.format.weight=0.0, reward_gate=format",
        "reward.format.weight=0.0, reward_gate=null",
        "reward.format.weight=0.1, reward_gate=null",
    ]
    assert all(len(a.runs) == 2 for a in arms)
    assert [a.label for a in group_arms(runs[:1] + runs[3:4])] == ["x"]  # same arm, two seeds


def test_a_key_present_in_only_some_runs_defines_an_arm():
    arms = group_arms([_run(1), _run(2, **{"reward.language.weight": 0.1})])
    assert [a.label for a in arms] == [
        "reward.language.weight=(unset)",
        "reward.language.weight=0.1",
    ]


def test_write_report_draws_every_plot_and_the_before_after_table(tmp_path):
    run = write_run(
        tmp_path / "run",
        evals=evals([0.1, 0.4, 0.5], [0.1, 0.3, 0.45]),
        train=train_rows([0.1, 0.2, 0.3, 0.4]),
        summary={
            "step": 4,
            "wall_seconds": 10.0,
            "seconds": {"gen": 6.0, "train": 2.0},
            "alarms": [{"step": 3, "kind": "length_collapse", "message": "short"}],
            "before": {"eval/greedy_acc": 0.1},
            "after": {"eval/greedy_acc": 0.5},
        },
    )
    report = write_report(run).read_text()
    assert "| greedy accuracy | 0.100 | 0.500 | 0.400 |  |" in report
    assert "| gen | 6.0 | 75.0% |" in report and "length_collapse" in report
    for name in (
        "accuracy",
        "rewards",
        "format_rate",
        "length",
        "think_rate",
        "kl",
        "entropy",
        "lr",
    ):
        assert (run / "plots" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert f"(plots/{name}.png)" in report


def test_write_report_skips_absent_metrics_and_survives_a_run_without_any(tmp_path):
    run = write_run(tmp_path / "partial", evals=evals([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]))
    report = write_report(run).read_text()
    assert (run / "plots" / "accuracy.png").is_file() and not (run / "plots" / "kl.png").exists()
    assert "plot `kl` skipped: no data for policy/kl" in report
    assert "| greedy accuracy | 0.100 | 0.300 |" in report  # before/after from metrics.jsonl
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "summary.json").write_text("{not json")
    text = write_report(empty).read_text()
    assert "No metrics were logged" in text and "summary.json: unreadable" in text


def test_finish_run_writes_the_report(tmp_path, capsys):
    from experiments.report.summary import finish_run

    run = write_run(tmp_path / "run", train={1: {"lr": 1e-4}})
    trainer = SimpleNamespace(run_dir=run, seconds={"gen": 1.0})
    result = {"step": 4, "before": {"eval/greedy_acc": 0.1}, "after": {"eval/greedy_acc": 0.5}}
    finish_run(trainer, result, wall_s=2.0)
    report = (run / "report.md").read_text()
    assert "| greedy accuracy | 0.100 | 0.500 |" in report and "(plots/lr.png)" in report


def test_metrics_reader_parses_nan_strings_and_lets_a_resumed_step_win(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "a": 1.0, "b": "nan"}\n{"step": 2, "a": "inf"}\n'
        '{"step": 1, "a": 5.0}\n{"step": 3, "a": 2\n'
    )  # torn last line
    notes = []
    m = read_metrics(path, notes)
    assert m["a"].steps.tolist() == [1, 2] and m["a"].values.tolist() == [5.0, math.inf]
    assert math.isnan(m["b"].values[0]) and "metrics.jsonl:4" in notes[0]
    assert steps_to_target(m["a"], 3.0) == 1


def test_smoothing_is_a_centred_moving_average_that_skips_nan():
    assert smooth(np.array([1.0, 2, 3, 4, 5]), 1).tolist() == [1.5, 2.0, 3.0, 4.0, 4.5]
    assert smooth(np.array([1.0, math.nan, 3.0]), 1).tolist() == [1.0, 2.0, 3.0]
    assert smooth(np.array([1.0, 7.0]), 0).tolist() == [1.0, 7.0]


def _t_upper_tail(t, df, n=400_000):
    """P(T > t) by integrating the Student t density on x = t/u, u in (0, 1]."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    u = (np.arange(n) + 0.5) / n  # midpoint rule
    x = t / u
    return float(np.mean(c * (1 + x * x / df) ** (-(df + 1) / 2) * t / u**2))


@pytest.mark.parametrize("df", [1, 2, 5, 30, 31, 45, 200])
def test_t_quantile_leaves_two_and_a_half_percent_in_the_upper_tail(df):
    assert _t_upper_tail(t975(df), df) == pytest.approx(0.025, abs=2e-6)


def test_mean_ci_has_no_interval_for_a_single_seed_and_ignores_nan():
    assert mean_ci([0.5])[0] == 0.5 and math.isnan(mean_ci([0.5])[1])
    s = math.sqrt(((0.5 - 0.6) ** 2 + (0.7 - 0.6) ** 2) / 1)
    assert mean_ci([0.5, math.nan, 0.7]) == pytest.approx((0.6, 12.706204736 * s / math.sqrt(2), 2))


def test_load_run_requires_a_config_for_comparisons(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "eval/greedy_acc": 0.5}\n')
    with pytest.raises(ValueError, match="no config.yaml"):
        load_run(tmp_path)
    assert load_run(tmp_path, require_config=False).config == {}


def test_ablation_recipe_sweeps_reward_arms_and_seeds_on_top_of_r1_zero_tiny():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    register()
    conf = Path(__file__).resolve().parents[1] / "experiments" / "conf"
    with initialize_config_dir(str(conf), version_base=None):
        sweep = compose("config", overrides=["experiment=ablate_rewards"], return_hydra_config=True)
        assert dict(sweep.hydra.sweeper.params) == {
            "reward": "accuracy_only,env_default,gated",
            "seed": "1,2,3",
        }
        base = OmegaConf.to_container(compose("config"))
        arms = {
            arm: OmegaConf.to_container(
                compose("config", overrides=["experiment=ablate_rewards", f"reward={arm}"])
            )
            for arm in ("accuracy_only", "env_default", "gated", "language")
        }
        lingual = OmegaConf.to_container(
            compose(
                "config",
                overrides=[
                    "experiment=ablate_rewards",
                    "env=multilingual",
                    "reward=language",
                    "reward.language.weight=0",
                ],
            )
        )
    assert arms["env_default"] == {
        **base,
        "name": "ablate_rewards",
    }  # everything else from r1_zero_tiny
    weights = {
        arm: (
            {k: v["weight"] for k, v in c["reward"].items() if v["weight"] is not None},
            c["reward_gate"],
        )
        for arm, c in arms.items()
    }
    # the env's own defaults (math 1.0, format 0.1) live in its module, not in the config
    assert weights["accuracy_only"] == ({"format": 0.0, "language": 0.0}, None)
    assert weights["env_default"] == ({}, None)
    assert weights["gated"] == ({"format": 0.0}, "format")
    assert weights["language"] == ({"format": 0.1, "language": 0.1}, None)
    assert (
        lingual["env"]["name"] == "multilingual" and lingual["reward"]["language"]["weight"] == 0.0
    )


def test_a_searched_folder_skips_evaluation_outputs_that_have_no_config(tmp_path):
    from experiments.report.runs import find_runs

    run, ev = tmp_path / "stage", tmp_path / "eval" / "route"
    for d in (run, ev):
        d.mkdir(parents=True)
        (d / "metrics.jsonl").write_text('{"step": 0}\n')
    (run / "config.yaml").write_text("seed: 0\n")
    assert find_runs([tmp_path]) == [run]
    assert find_runs([ev]) == [ev]  # named directly: taken as given
