"""`rlreason-export` on real training runs, checked against peft and transformers.

Runs are trained in-process through `rlreason-train`'s `run` (1-2 GRPO steps; rewards are all 0
on a random model, so an entropy bonus moves the weights). The reference logits come from the
run's checkpoint loaded with rlreason's own primitives (load_pretrained / GPT, apply_lora,
load_trainable), the exports are read back by `peft` and `transformers`.
"""

import json
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from experiments.export import ExportError, export, main  # noqa: E402
from rlreason.checkpoint import load_trainable  # noqa: E402
from rlreason.config import ConfigError  # noqa: E402
from rlreason.model.gpt import GPT, GPTConfig  # noqa: E402
from rlreason.model.hf import load_pretrained  # noqa: E402
from rlreason.model.lora import apply_lora  # noqa: E402
from rlreason.model.tokenizer import CharTokenizer  # noqa: E402
from tests.test_e2e_smoke import compose  # noqa: E402
from tests.test_hf_load import V, save_tiny  # noqa: E402
from tests.test_hf_tokenizer import build_tokenizer  # noqa: E402

CONF = str((Path(__file__).parent.parent / "experiments" / "conf").resolve())
ATOL = 1e-5  # tiny fp32 models: rlreason vs transformers/peft differ by ~1e-7
QUICK = [
    "train.prompts_per_step=2",
    "algo.group_size=2",
    "algo.epochs=1",
    "algo.entropy_coef=1.0",
    "optim.warmup_steps=0",
    "optim.lr=0.05",
    "sampling.max_new_tokens=6",
    "eval.n_problems=0",
    "env.n_train=8",
    "env.n_eval=4",
    "train.progress=false",
    "train.threads=1",
    "log.wandb.mode=disabled",
]
HF_LORA = ["lora.enabled=true", "lora.rank=4", "lora.alpha=8", "lora.dropout=0.1"]


def train(run_dir: Path, *overrides: str) -> Path:
    from experiments.train import run

    run(compose([*QUICK, f"log.run_dir={run_dir}", *overrides]))
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny HF Llama base and three runs on it: LoRA (2 steps), full fine-tuning, built-in GPT."""
    root = tmp_path_factory.mktemp("export")
    base = root / "base"
    save_tiny("llama", base)
    build_tokenizer(base)
    hf = ["model=hf", f"model.path={base}", "model.dtype=float32"]
    targets = "lora.targets=[q_proj,v_proj,down_proj]"
    return {
        "base": base,
        "lora": train(root / "lora", *hf, *HF_LORA, targets, "train.steps=2", "train.save_every=1"),
        "full": train(root / "full", *hf, "train.steps=1"),
        "native": train(
            root / "native",
            *["model=scratch", "model.n_layer=1", "model.n_head=2", "model.d_model=32"],
            *["model.max_seq_len=64", "lora.enabled=true", "lora.rank=2", "train.steps=1"],
        ),
    }


def trained_policy(run_dir: Path, step: int | None = None):
    """The run's policy from its checkpoint, built with rlreason's primitives (not export.py)."""
    saved = OmegaConf.load(run_dir / "config.yaml")
    ckpt = run_dir / (
        f"checkpoints/step_{step:06d}" if step else (run_dir / "latest").read_text().strip()
    )
    if saved.model.source == "hf":
        model, _ = load_pretrained(saved.model.path, dtype="float32", with_tokenizer=False)
    else:  # scratch: the base weights are the seeded initialisation
        torch.manual_seed(saved.seed)
        m = saved.model
        model = GPT(
            GPTConfig(
                vocab_size=CharTokenizer().vocab_size,
                n_layer=m.n_layer,
                n_head=m.n_head,
                d_model=m.d_model,
                max_seq_len=m.max_seq_len,
                flavour=m.flavour,
            )
        )
    if saved.lora.enabled:
        lora = saved.lora
        apply_lora(model, lora.rank, lora.alpha, tuple(lora.targets), lora.dropout, lora.rslora)
    load_trainable(model, ckpt / "trainable.safetensors")
    return model.eval()


def logits(model, ids):
    with torch.no_grad():
        out = model(ids)
    return out if isinstance(out, torch.Tensor) else out.logits


def ids(vocab=V, seed=0):
    return torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(seed))


def test_a_lora_run_exports_a_peft_adapter_that_peft_loads_with_the_runs_logits(runs, tmp_path):
    main([str(runs["lora"]), "--peft", str(tmp_path / "adapter")])
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (4, 8.0, 0.1)
    assert config["target_modules"] == ["mlp.down_proj", "self_attn.q_proj", "self_attn.v_proj"]
    assert config["base_model_name_or_path"] == str(runs["base"].resolve())
    base = transformers.AutoModelForCausalLM.from_pretrained(runs["base"])
    adapted = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    b_weights = [p for n, p in adapted.named_parameters() if "lora_B" in n]
    assert len(b_weights) == 3 * 2 and all(p.abs().sum() > 0 for p in b_weights)  # all trained
    ours = logits(trained_policy(runs["lora"]), ids())
    with adapted.disable_adapter():
        assert (logits(adapted, ids()) - ours).abs().max() > 1e-3  # the adapter matters
    torch.testing.assert_close(logits(adapted, ids()), ours, atol=ATOL, rtol=ATOL)
    record = json.loads((tmp_path / "adapter" / "export.json").read_text())
    assert record["step"] == 2 and record["checkpoint"].endswith("step_000002")


@pytest.mark.parametrize("run", ["lora", "full"])
def test_merged_export_loads_in_transformers_with_the_runs_logits_and_tokenizer(
    runs, tmp_path, run
):
    from rlreason.model.hf import HFTokenizer

    main([str(runs[run]), "--merged", str(tmp_path / "merged")])
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    ours = logits(trained_policy(runs[run]), ids(seed=1))
    assert (logits(merged, ids(seed=1)) - ours).abs().max() < ATOL
    untrained = transformers.AutoModelForCausalLM.from_pretrained(runs["base"]).eval()
    assert (logits(untrained, ids(seed=1)) - ours).abs().max() > 1e-3  # training moved it
    text = "12 + 7 = 19"
    reference = transformers.AutoTokenizer.from_pretrained(tmp_path / "merged")
    assert reference.encode(text, add_special_tokens=False) == HFTokenizer(runs["base"]).encode(
        text
    )


def test_step_picks_an_earlier_checkpoint_than_the_latest(runs, tmp_path):
    export(runs["lora"], merged=tmp_path / "step1", step=1)
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "step1").eval()
    first, last = trained_policy(runs["lora"], step=1), trained_policy(runs["lora"])
    torch.testing.assert_close(logits(merged, ids()), logits(first, ids()), atol=ATOL, rtol=ATOL)
    assert (logits(first, ids()) - logits(last, ids())).abs().max() > 1e-4
    with pytest.raises(ExportError, match=r"step_000007: no checkpoint.*step_000001, step_000002"):
        export(runs["lora"], merged=tmp_path / "step7", step=7)


def test_a_built_in_gpt_run_exports_merged_as_a_transformers_llama_but_no_peft(runs, tmp_path):
    export(runs["native"], merged=tmp_path / "merged")
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert config["model_type"] == "llama" and not (tmp_path / "merged" / "tokenizer.json").exists()
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    ours = trained_policy(runs["native"])
    x = ids(vocab=ours.config.vocab_size, seed=2)
    torch.testing.assert_close(logits(merged, x), logits(ours, x), atol=ATOL, rtol=ATOL)
    with pytest.raises(ExportError, match=r"built-in GPT \(model.source=scratch\).*use --merged"):
        export(runs["native"], peft=tmp_path / "adapter")


def test_what_cannot_be_exported_is_refused_naming_the_path(runs, tmp_path, capsys):
    with pytest.raises(ExportError, match=rf"{re.escape(str(tmp_path))}: no config.yaml there"):
        export(tmp_path, merged=tmp_path / "out")
    not_started = tmp_path / "not_started"
    not_started.mkdir()
    (not_started / "config.yaml").write_text((runs["lora"] / "config.yaml").read_text())
    with pytest.raises(
        ExportError, match=rf"{re.escape(str(not_started))}: no checkpoint \(.*latest is missing"
    ):
        export(not_started, peft=tmp_path / "out")
    with pytest.raises(ExportError, match=r"full fine-tuning run.*no adapter.*use --merged DIR"):
        export(runs["full"], peft=tmp_path / "out")
    with pytest.raises(ExportError, match="refusing to write over"):
        export(runs["lora"], merged=runs["lora"], force=True)
    with pytest.raises(SystemExit) as exit_info:
        main([str(runs["full"]), "--peft", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and str(runs["full"]) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_non_empty_output_directory_is_replaced_only_with_force(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model-00001-of-00002.safetensors").write_text("stale")
    with pytest.raises(
        ExportError, match=rf"{re.escape(str(out))} exists and is not empty.*--force"
    ):
        export(runs["full"], merged=out)
    export(runs["full"], merged=out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["config.json", "generation_config.json", "model.safetensors", "export.json"]
        + ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporaries left


# --------------------------------------------------------------------------- rlreason-eval


def compose_eval(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from experiments.schema import register

    register()
    with initialize_config_dir(CONF, version_base=None):
        return OmegaConf.to_object(
            hydra_compose("eval", overrides=["log.wandb.mode=disabled", *overrides])
        )


def test_eval_adapter_accepts_the_peft_directory_that_export_writes(runs, tmp_path):
    from experiments.eval import load_policy
    from rlreason.model.lora import save_adapter

    export(runs["lora"], peft=tmp_path / "peft")
    trained = trained_policy(runs["lora"])
    save_adapter(trained, tmp_path / "native")
    hf = ["model=hf", f"model.path={runs['base']}", "model.dtype=float32"]
    for name, layout in (("peft", "peft"), ("native", "rlreason")):
        model, _, info = load_policy(compose_eval(*hf, f"eval.adapter={tmp_path / name}"))
        assert info["adapter_format"] == layout
        torch.testing.assert_close(logits(model, ids()), logits(trained, ids()), atol=0, rtol=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ConfigError, match=rf"eval.adapter={re.escape(str(empty))}:.*adapter_config"
    ):
        load_policy(compose_eval(*hf, f"eval.adapter={empty}"))


# --------------------------------------------------------------------------- a real checkpoint


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_grpo_steps_with_lora_on_smollm2_export_to_peft_with_the_same_logits(
    smollm2_dir, tmp_path
):
    from safetensors.torch import load_file

    run_dir = train(
        tmp_path / "run",
        *["model=hf", f"model.path={smollm2_dir}", "model.dtype=float32", "env.template=chat"],
        *["lora.enabled=true", "lora.rank=4", "train.steps=2", "optim.lr=1e-2"],
        *["algo.entropy_coef=0.01", "algo.log_kl=false", "sampling.max_new_tokens=12"],
        "train.threads=2",
    )
    state = load_file(str(run_dir / "checkpoints" / "step_000002" / "trainable.safetensors"))
    assert sum(float(v.norm()) for k, v in state.items() if ".lora_B." in k) > 0  # B starts at 0
    main([str(run_dir), "--peft", str(tmp_path / "adapter")])
    base = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir)
    adapted = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    x = ids(vocab=49152, seed=3)
    ours = logits(trained_policy(run_dir), x)
    with adapted.disable_adapter():
        assert (logits(adapted, x) - ours).abs().max() > 1e-2
    # 30 fp32 layers: rlreason and transformers differ by ~1e-4 on logits of magnitude ~35
    torch.testing.assert_close(logits(adapted, x), ours, atol=1e-3, rtol=1e-4)
