import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from omegaconf import OmegaConf

from envs.base import Task
from rlreason.config import Config, ConfigError

CONF = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())
TINY = [
    "model=scratch",
    "model.n_layer=1",
    "model.n_head=2",
    "model.d_model=32",
    "model.max_seq_len=64",
    "env.digits=2",
    "env.n_train=10",
    "env.n_eval=4",
    "eval.samples=4",
    "eval.k=[1,2,4]",
    "eval.n_problems=4",
    "eval.max_new_tokens=10",
    "eval.beam_width=2",
    "eval.n_boot=50",
    "log.wandb.mode=disabled",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def compose_eval(*overrides: str):
    from hydra import compose, initialize_config_dir

    from experiments.schema import register

    register()
    with initialize_config_dir(CONF, version_base=None):
        return OmegaConf.to_object(compose("eval", overrides=[*TINY, *overrides]))


class Script(nn.Module):
    """A stand-in policy that always continues with `script`: the token after the last fed one
    (the script's first token after any token not in it). Char-tokenizer vocabulary."""

    def __init__(self, script: list[int], vocab: int):
        super().__init__()
        from rlreason.model.gpt import GPTConfig

        self.config = GPTConfig(vocab_size=vocab, n_layer=1, n_head=1, d_model=4, max_seq_len=64)
        table = torch.full((vocab, vocab), -1e4)
        table[:, script[0]] = 0.0
        for a, b in zip(script, script[1:]):
            table[a] = -1e4
            table[a, b] = 0.0
        self.table = nn.Parameter(table)  # (V, V)

    def forward(self, ids, kv_cache=None, positions=None, key_mask=None):
        if kv_cache is not None:
            kv_cache.advance(ids.shape[1])
        return self.table[ids]  # (B, T, V)


def test_eval_writes_its_json_and_png_and_repeats_exactly_for_a_fixed_seed(tmp_path):
    from experiments.eval import run

    a = run(compose_eval(f"eval.out={tmp_path / 'a'}"))
    b = run(compose_eval(f"eval.out={tmp_path / 'b'}"))
    c = run(compose_eval(f"eval.out={tmp_path / 'c'}", "eval.seed=7"))
    saved = json.loads((tmp_path / "a" / "eval.json").read_text())
    assert saved["metrics"] == a["metrics"] == b["metrics"]
    assert saved["config"]["eval"]["k"] == [1, 2, 4] and saved["num_problems"] == 4
    m = a["metrics"]
    for k in (1, 2, 4):
        assert {f"eval/tiny/pass@{k}", f"eval/tiny/maj@{k}", f"eval/tiny/best_of_{k}"} <= set(m)
    assert {
        "eval/tiny/greedy_acc",
        "eval/tiny/beam_acc",
        "eval/tiny/beam_any_acc",
        "eval/tiny/beam_length_mean_lo",
    } <= set(m)
    assert m["eval/tiny/num_problems"] == 4
    assert c["metrics"]["eval/tiny/length_mean"] != m["eval/tiny/length_mean"]  # the seed is used
    assert (tmp_path / "a" / "scaling.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "a" / "metrics.jsonl").is_file()


def test_a_typo_or_an_unknown_choice_in_an_override_is_an_error(tmp_path):
    from hydra.errors import ConfigCompositionException

    from experiments.eval import run

    with pytest.raises(ConfigCompositionException):
        compose_eval("eval.beam_widht=2")
    with pytest.raises(ConfigError, match=r"eval.strategies=\['smaple'\]"):
        run(compose_eval("eval.strategies=[smaple]", f"eval.out={tmp_path}"))
    with pytest.raises(ConfigError, match=r"eval.k=\[1, 8\]"):
        run(compose_eval("eval.k=[1,8]", f"eval.out={tmp_path}"))
    with pytest.raises(ConfigError, match="prefill 'cott'"):
        run(compose_eval("eval.templates=[tiny+cott]", f"eval.out={tmp_path}"))


def test_a_direct_prefill_is_put_back_in_front_of_the_completion_before_scoring():
    from envs.base import build_env
    from experiments.eval import build_arms, evaluate_arms
    from rlreason.model.tokenizer import CharTokenizer

    tok = CharTokenizer()
    cfg = compose_eval("eval.templates=[tiny,tiny+direct]", "eval.samples=2", "eval.k=[1,2]")
    env = build_env("arithmetic", digits=2, n_train=4, n_eval=4)
    arms = build_arms(cfg, env, tok)
    tasks = [Task("5+7=", "12"), Task("3+9=", "12")]
    assert arms[1].render(tasks[0]) == "Q: 5+7=\nA: <answer>"
    model = Script(tok.encode("12</answer>"), tok.vocab_size)  # always says 12</answer>
    m = evaluate_arms(model, tok, tasks, arms, cfg.eval)
    for key in ("greedy_acc", "pass@1", "maj@2", "beam_acc"):
        assert m[f"eval/tiny+direct/{key}"] == 1.0  # "<answer>12</answer>"
        assert m[f"eval/tiny/{key}"] == 0.0  # "12</answer>": no answer


def train_tiny_run(run_dir: Path, lora: bool):
    from experiments.schema import env_config
    from experiments.train import build_trainer

    cfg = Config()
    cfg.model.source, cfg.model.n_layer, cfg.model.n_head, cfg.model.d_model = "scratch", 1, 2, 32
    cfg.model.max_seq_len, cfg.lora.enabled, cfg.lora.rank, cfg.seed = 64, lora, 2, 5
    cfg.env = env_config("arithmetic", digits=2, n_train=8, n_eval=4)
    cfg.sampling.max_new_tokens = 6
    cfg.train.steps, cfg.train.prompts_per_step, cfg.train.progress, cfg.train.save_every = (
        2,
        2,
        False,
        0,
    )
    cfg.algo.group_size, cfg.optim.warmup_steps, cfg.optim.lr = 2, 0, 5e-2
    cfg.algo.entropy_coef = 1.0  # rewards are all 0 on a random model: entropy moves it
    cfg.eval.n_problems = 0
    cfg.log.wandb.mode, cfg.log.console_every, cfg.log.samples_every = "disabled", 1000, 0
    cfg.log.run_dir = str(run_dir)
    trainer = build_trainer(cfg)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    trainer.run()
    trainer.logger.finish()
    return trainer.model.eval()


@pytest.mark.parametrize("lora", [False, True])
def test_run_dir_loads_the_latest_checkpoint_with_the_trained_model_logits(tmp_path, lora):
    from experiments.eval import load_policy, run
    from rlreason.model.gpt import GPT

    trained = train_tiny_run(tmp_path / "run", lora)
    model, _, info = load_policy(compose_eval(f"eval.run_dir={tmp_path / 'run'}"))
    ids = torch.randint(
        0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        assert torch.equal(model(ids), trained(ids))
        torch.manual_seed(5)
        fresh = GPT(model.config) if not lora else None
        if fresh is not None:  # training moved the weights
            assert not torch.equal(fresh(ids), trained(ids))
    assert info["step"] == 2
    if lora:
        assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
        result = run(compose_eval(f"eval.run_dir={tmp_path / 'run'}", "eval.strategies=[beam]"))
        saved = json.loads((tmp_path / "run" / "eval" / "eval.json").read_text())  # default out
        assert saved["model"]["step"] == 2 and saved["metrics"] == result["metrics"]
        assert saved["plots"] == {}  # no samples: no curve


def test_an_adapter_directory_is_applied_to_the_configured_model(tmp_path):
    from experiments.eval import load_policy
    from rlreason.model.lora import apply_lora, lora_modules, save_adapter

    base, _, _ = load_policy(compose_eval("seed=3"))
    apply_lora(base, rank=2, alpha=4.0)
    for _, m in lora_modules(base):
        torch.nn.init.normal_(m.lora_B.weight, std=0.5)
    save_adapter(base, tmp_path / "adapter")
    model, _, info = load_policy(compose_eval("seed=3", f"eval.adapter={tmp_path / 'adapter'}"))
    plain, _, _ = load_policy(compose_eval("seed=3"))
    ids = torch.arange(10)[None]
    with torch.no_grad():
        assert torch.equal(model(ids), base(ids))
        assert not torch.allclose(plain(ids), base(ids))
    assert info["adapter"] == str(tmp_path / "adapter")


def test_run_dir_evaluates_on_the_runs_own_env_and_rewards_unless_run_env_is_false(tmp_path):
    from experiments.eval import with_run_task

    train_tiny_run(tmp_path / "run", lora=False)
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    cfg = with_run_task(compose_eval(f"eval.run_dir={tmp_path / 'run'}", "env.n_eval=7"))
    assert cfg.env.name == saved.env.name
    assert cfg.env.n_eval == saved.env.n_eval == 4  # the command's n_eval=7 ignored
    assert OmegaConf.to_container(OmegaConf.structured(cfg.env)) == OmegaConf.to_container(
        saved.env
    )
    assert sorted(cfg.reward) == sorted(saved.reward)
    mine = compose_eval(f"eval.run_dir={tmp_path / 'run'}", "eval.run_env=false", "env.n_eval=7")
    assert with_run_task(mine).env.n_eval == 7
