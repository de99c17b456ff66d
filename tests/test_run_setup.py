"""What `rlreason-train` checks and builds before training: splits, templates, run directory
names, the LR schedule's first steps, devices, dtypes and when a reference copy exists."""

import json
from pathlib import Path

import pytest
import torch

from experiments import build as build_mod
from experiments.build import arm_label, run_directory
from experiments.schema import env_config
from experiments.train import arm_name, build_trainer, run
from rlreason.config import ConfigError, resolve_schedule, validate
from rlreason.model.tokenizer import CharTokenizer
from tests.test_rl_trainer import metrics_by_step, tiny_cfg


def jsonl_cfg(tmp_path, **over):
    data = tmp_path / "g.jsonl"
    rows = [{"question": f"What is {i}+1?", "answer": f"#### {i + 1}"} for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_cfg(tmp_path, **over)
    cfg.env = env_config("jsonl", path=str(data), format="gsm8k", template="tiny")
    return cfg


def no_model(*args, **kwargs):
    raise AssertionError("the model was built before the configuration was checked")


def test_a_jsonl_env_without_an_eval_split_is_an_error_before_the_model_loads(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(build_mod, "build_policy", no_model)
    cfg = jsonl_cfg(tmp_path)
    cfg.eval.n_problems = 5
    with pytest.raises(ConfigError, match=r"no eval split.*env\.n_eval"):
        build_trainer(cfg)
    assert not (tmp_path / "run").exists()  # no empty run directory left behind


def test_a_jsonl_env_with_a_held_out_split_or_no_evaluation_trains(tmp_path):
    cfg = jsonl_cfg(tmp_path, **{"train.steps": 1})
    cfg.env.n_eval, cfg.eval.n_problems = 2, 2
    out = run(cfg)
    assert out["step"] == 1 and "after" in out
    cfg = jsonl_cfg(tmp_path, **{"train.steps": 1, "log.run_dir": str(tmp_path / "r2")})
    assert run(cfg)["step"] == 1  # eval.n_problems=0 (tiny_cfg): no eval split needed


class ChatCharTokenizer(CharTokenizer):
    """The char tokenizer with a chat template, as an HF tokenizer would have."""

    chat_template = "<user>{prompt}<assistant>"

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return f"<user>{messages[-1]['content']}\n<assistant>"


def test_the_chat_template_renders_in_training_with_the_policy_tokenizer(tmp_path, monkeypatch):
    real = build_mod.build_policy

    def with_chat_tokenizer(model_cfg, lora):
        model, _ = real(model_cfg, lora)
        return model, ChatCharTokenizer()

    monkeypatch.setattr(build_mod, "build_policy", with_chat_tokenizer)
    cfg = tiny_cfg(tmp_path, **{"train.steps": 1})
    cfg.env.template = "chat"
    trainer = build_trainer(cfg)
    task = trainer.train_tasks[0]
    assert trainer.render(task) == f"<user>{task.prompt}\n<assistant>"
    trainer.run()  # rollouts use that render
    assert trainer.step == 1


def test_a_prompt_longer_than_the_context_is_an_error_before_the_first_rollout(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.env.template = "r1_zero"  # ~300 characters: more than the 64 of tiny_cfg's model
    with pytest.raises(ConfigError, match=r"longest prompt \(\d+ tokens.*context of 64"):
        build_trainer(cfg)


def test_a_template_that_cannot_render_fails_before_training_with_its_name(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.env.template = "chat"  # the char tokenizer has no chat template
    with pytest.raises(ConfigError, match=r"env\.template=chat.*apply_chat_template"):
        build_trainer(cfg)


def test_run_directory_names_are_short_path_safe_and_differ_per_arm(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.log.run_dir, cfg.log.out_dir = None, str(tmp_path / "runs")
    overrides = ["model.path=/very/deep/abs/path/to/a/model", "experiment=r1_zero_hf"] + [
        f"reward.term{i}.weight=0.{i}" for i in range(40)
    ]
    arm = arm_name(overrides)
    assert "experiment=" not in arm and "model.path" in arm
    d = run_directory(cfg, arm)
    assert d.parent == tmp_path / "runs" / cfg.name  # no nesting from the "/" in the path
    assert len(d.name) <= 80 and "/" not in d.name
    assert d.is_dir()  # created: a real file system accepts the name
    again = run_directory(cfg, arm)  # the same second: a suffix, never the same directory
    assert again != d and again.is_dir()
    other = arm_label(arm_name(overrides[:-1]))
    assert other != arm_label(arm) and other[:40] == arm_label(arm)[:40]
    assert arm_label("") == "default"
    assert arm_label("model.path=/models/Qwen2.5-0.5B/,lora.rank=16").startswith(
        "model.path=Qwen2.5-0.5B_lora.rank=16-"
    )


def test_the_overrides_are_recorded_in_config_yaml(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"train.steps": 1})
    cfg.log.overrides = ["train.steps=1", "model.path=/a/b"]
    run(cfg)
    text = (tmp_path / "run" / "config.yaml").read_text()
    assert "- model.path=/a/b" in text


def test_the_first_step_trains_at_a_nonzero_learning_rate_with_the_default_warmup(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"train.steps": 2, "optim.warmup_steps": 5})
    cfg.optim.initial_lr = 0.0
    run(cfg)  # warmup 5 > steps 2: clamped to 2, with a note
    m = metrics_by_step(tmp_path / "run")
    assert m[1]["lr"] == pytest.approx(cfg.optim.lr / 2) and m[2]["lr"] == pytest.approx(1e-2)


def test_a_warmup_ratio_sets_the_warmup_steps_and_a_long_warmup_is_clamped(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"train.steps": 40, "optim.warmup_ratio": 0.1})
    notes = resolve_schedule(cfg)
    assert cfg.optim.warmup_steps == 4 and "warmup_ratio" in notes[0]
    cfg = tiny_cfg(tmp_path, **{"train.steps": 4, "optim.warmup_steps": 5})
    validate(cfg)  # no longer an error
    assert "exceeds" in resolve_schedule(cfg)[0] and cfg.optim.warmup_steps == 4
    with pytest.raises(ConfigError, match="warmup_ratio"):
        validate(tiny_cfg(tmp_path, **{"optim.warmup_ratio": 1.5}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CUDA-less machine")
def test_asking_for_cuda_without_cuda_is_a_config_error_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.device='cuda'.*CUDA is not available"):
        validate(tiny_cfg(tmp_path, **{"model.device": "cuda"}))
    with pytest.raises(ConfigError, match="not a device name"):
        validate(tiny_cfg(tmp_path, **{"model.device": "gpu0"}))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_dtypes_are_accepted_and_train(tmp_path, dtype):
    cfg = tiny_cfg(tmp_path, **{"model.dtype": dtype, "train.steps": 1})
    out = run(cfg)
    assert out["step"] == 1
    record = json.loads((Path(tmp_path) / "run" / "model.json").read_text())["precision"]
    assert record["compute_dtype"] == f"torch.{dtype}"
    assert record["trainable_dtypes"] == ["torch.float32"]


def test_full_fine_tuning_copies_a_reference_only_when_kl_is_in_the_loss(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"algo.kl_coef": 0.0, "algo.log_kl": True})
    assert build_trainer(cfg).reference is None  # logging KL alone does not double the weights
    cfg = tiny_cfg(tmp_path, **{"algo.kl_coef": 0.05, "model.dtype": "bfloat16"})
    ref = build_trainer(cfg).reference
    assert ref is not None and not any(p.requires_grad for p in ref.parameters())
    assert {p.dtype for p in ref.parameters()} == {torch.bfloat16}  # frozen: compute dtype


def test_without_a_reference_kl_is_not_logged_and_with_one_it_is(tmp_path):
    cfg = tiny_cfg(tmp_path, **{"train.steps": 1, "algo.kl_coef": 0.0})
    run(cfg)
    assert "policy/kl" not in metrics_by_step(tmp_path / "run")[1]
    cfg = tiny_cfg(
        tmp_path, **{"train.steps": 1, "algo.kl_coef": 0.05, "log.run_dir": str(tmp_path / "k")}
    )
    run(cfg)
    assert "policy/kl" in metrics_by_step(tmp_path / "k")[1]


def test_the_r1_zero_hf_preset_composes_its_documented_settings_and_trains_on_jsonl(tmp_path):
    from experiments.train import run as train_run
    from tests.test_e2e_smoke import compose
    from tests.test_hf_load import save_tiny
    from tests.test_hf_tokenizer import build_tokenizer

    base = tmp_path / "base"
    save_tiny("llama", base)
    build_tokenizer(base)
    data = jsonl_cfg(tmp_path).env.path
    recipe = [
        "experiment=r1_zero_hf",
        f"model.path={base}",
        "env=jsonl",
        f"env.path={data}",
        "env.format=gsm8k",
    ]
    cfg = compose(recipe)
    assert (cfg.model.source, cfg.model.dtype, cfg.model.gradient_checkpointing) == (
        "hf",
        "bfloat16",
        True,
    )
    assert cfg.lora.enabled and cfg.lora.rank == 16 and len(cfg.lora.targets) == 7
    assert (cfg.algo.group_size, cfg.sampling.max_new_tokens, cfg.sampling.temperature) == (
        8,
        1024,
        1.0,
    )
    assert cfg.env.name == "jsonl" and cfg.env.template == "r1_zero" and cfg.eval.every > 0
    small = [
        "env.template=plain",  # the tiny model's context is 256 tokens
        "train.steps=1",
        "train.prompts_per_step=1",
        "algo.group_size=2",
        "sampling.max_new_tokens=4",
        "env.n_eval=1",
        "eval.n_problems=1",
        "eval.samples=1",
        "eval.max_new_tokens=4",
        "train.progress=false",
        "log.wandb.mode=disabled",
        f"log.run_dir={tmp_path / 'run'}",
    ]
    out = train_run(compose([*recipe, *small]))
    assert out["step"] == 1 and "after" in out
    record = json.loads((tmp_path / "run" / "model.json").read_text())
    assert record["precision"]["compute_dtype"] == "torch.bfloat16" and record["lora"] > 0


def test_the_readme_own_data_recipe_composes_onto_the_default_experiment(tmp_path):
    from experiments.build import build_env
    from tests.test_e2e_smoke import compose

    data = jsonl_cfg(tmp_path).env.path
    cfg = compose(["env=jsonl", f"env.path={data}", "env.format=gsm8k", "env.n_eval=2"])
    env, template = build_env(cfg)  # no arithmetic options leak into the jsonl env
    assert cfg.env.name == "jsonl" and not hasattr(cfg.env, "digits")
    assert (len(env.train), len(env.eval), template.name) == (4, 2, "r1_zero")
