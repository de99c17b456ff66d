"""`rlreason-sft` end to end on a tiny scratch model: the run directory, the policy
`load_run_policy` rebuilds, resume, and bad input reported as one line with exit code 2."""

import json
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import experiments.sft as sft
from rlreason.config import ConfigError

CONF = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())
TINY = [
    "model=scratch",
    "model.n_layer=1",
    "model.n_head=2",
    "model.d_model=32",
    "model.max_seq_len=64",
    "env.n_train=10",
    "env.n_eval=4",
    "eval.n_problems=4",
    "eval.samples=2",
    "eval.max_new_tokens=8",
    "eval.every=2",
    "sft.batch_size=4",
    "sft.eval_fraction=0.25",
    "optim.warmup_steps=1",
    "train.save_every=2",
    "train.progress=false",
    "log.wandb.mode=disabled",
]


def write_pairs(path: Path, n: int = 12) -> Path:
    rows = [
        {"prompt": f"Q: {i}+{i}=\nA: ", "completion": f"<answer>{2 * i}</answer>"} for i in range(n)
    ]
    path.write_text("".join(json.dumps({**r, "source": "test"}) + "\n" for r in rows))
    return path


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from experiments.schema import register

    register()
    with initialize_config_dir(CONF, version_base=None):
        return OmegaConf.to_object(hydra_compose("sft", overrides=[*TINY, *overrides]))


@pytest.mark.parametrize("lora", ["false", "true"])
def test_the_cli_writes_the_run_directory_and_load_run_policy_gets_the_trained_weights(
    tmp_path, monkeypatch, lora
):
    from experiments.build import build_policy
    from experiments.teacher import load_run_policy

    data = write_pairs(tmp_path / "pairs.jsonl")
    built = []
    real = sft.build_sft_trainer
    monkeypatch.setattr(sft, "build_sft_trainer", lambda *a: built.append(real(*a)) or built[-1])
    out = f"log.out_dir={tmp_path / 'runs'}"
    cfg = compose(f"sft.data={data}", "sft.epochs=1", out, f"lora.enabled={lora}")
    assert (cfg.job, cfg.name) == ("sft", "sft_tiny")
    summary = sft.run(cfg)
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path / "runs" / "sft_tiny"
    # 12 lines, 3 held out (0.25), 9 trained at 4 per step for 1 epoch: ceil(9 / 4) = 3 steps
    assert (summary["n_train"], summary["n_eval"], summary["step"]) == (9, 3, 3)
    assert summary["optimizer_steps"] == 3 and summary["tokens"] > 0
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert "eval/greedy_acc" in summary["before"] and "eval/greedy_acc" in summary["after"]
    assert summary["eval_loss"]["after"] < summary["eval_loss"]["before"]
    assert summary["data"]["path"] == str(data) and len(summary["data"]["sha256"]) == 64
    for name in ("config.yaml", "model.json", "metrics.jsonl", "latest"):
        assert (run_dir / name).is_file(), name
    saved = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert saved == ["step_000002", "step_000003"]
    model, _, info = load_run_policy(run_dir)
    assert info["step"] == 3
    trained = built[0].model.eval()
    ids = torch.tensor([[10, 11, 12, 13, 14]])
    with torch.no_grad():
        assert torch.equal(model(ids), trained(ids))
        torch.manual_seed(cfg.seed)  # the untrained weights differ: the checkpoint was loaded
        untrained, _ = build_policy(cfg.model, cfg.lora)
        assert not torch.allclose(untrained(ids), model(ids))


def test_stopping_and_resuming_through_the_cli_matches_a_straight_run(tmp_path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    base = [f"sft.data={data}", "train.steps=4", "eval.n_problems=0"]
    straight = sft.run(compose(*base, f"log.run_dir={tmp_path / 'a'}"))
    first = sft.run(compose(*base, f"log.run_dir={tmp_path / 'b'}", "train.stop_after=2"))
    assert first["step"] == 2 and first["eval_loss"]["after"] is None
    resumed = sft.run(compose(f"train.resume={tmp_path / 'b'}", "sft.data=ignored.jsonl"))
    assert resumed["step"] == 4 and resumed["tokens"] == straight["tokens"]
    assert resumed["eval_loss"] == pytest.approx(straight["eval_loss"], abs=1e-6)

    def losses(run):
        rows = (Path(run) / "metrics.jsonl").read_text().splitlines()
        return [json.loads(r)["sft/loss"] for r in rows if "sft/loss" in r]

    assert losses(tmp_path / "b") == pytest.approx(losses(tmp_path / "a"), abs=1e-6)
    data.write_text(data.read_text() + data.read_text())  # the data changed: refused
    with pytest.raises(ConfigError, match="the data changed"):
        sft.run(compose(f"train.resume={tmp_path / 'b'}", "train.stop_after=4"))


def run_main(monkeypatch, capsys, *overrides):
    monkeypatch.setattr(sys, "argv", ["rlreason-sft", *TINY, *overrides])
    with pytest.raises(SystemExit) as info:
        sft.main()
    return info.value.code, capsys.readouterr().err


def test_a_bad_data_file_exits_2_naming_the_file_and_line(tmp_path, monkeypatch, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl", 3)
    data.write_text(data.read_text() + '{"prompt": "Q: 1+1=\\nA: "}\n')
    code, err = run_main(monkeypatch, capsys, f"sft.data={data}", f"log.out_dir={tmp_path}")
    assert code == 2
    assert err.strip() == f"[rlreason] {data}:4: missing 'completion' (keys: ['prompt'])"
    assert not (tmp_path / "sft_tiny").exists()  # nothing was built


def test_a_missing_data_setting_or_file_exits_2_naming_the_key(tmp_path, monkeypatch, capsys):
    code, err = run_main(monkeypatch, capsys, f"log.out_dir={tmp_path}")
    assert code == 2 and "sft.data is not set" in err
    code, err = run_main(monkeypatch, capsys, f"sft.data={tmp_path / 'nope.jsonl'}")
    assert code == 2 and f"sft.data={tmp_path / 'nope.jsonl'}: no such file" in err


def test_an_example_longer_than_the_context_exits_2_naming_its_line(tmp_path, monkeypatch, capsys):
    data = write_pairs(tmp_path / "pairs.jsonl", 2)
    long = json.dumps({"prompt": "Q", "completion": "x" * 80})
    data.write_text(data.read_text() + long + "\n")
    code, err = run_main(monkeypatch, capsys, f"sft.data={data}", "sft.eval_fraction=0")
    assert code == 2
    assert f"{data}:3: 82 tokens (1 prompt + 81 completion) exceed the model's context of 64" in err
