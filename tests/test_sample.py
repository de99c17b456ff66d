"""`rlreason-sample` (experiments/sample.py): what is accepted, deduplicated, capped and written,
with which provenance; determinism; config errors before the teacher loads; the built-in base and
a run directory as teachers; the written pairs as SFT data."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from experiments import sample as sample_mod
from experiments.sample import close_at_stop, run
from experiments.schema import env_config
from rlreason.config import Config, ConfigError
from rlreason.model.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parents[1]


def sample_cfg(tmp_path, **over) -> Config:
    cfg = Config()
    cfg.env = env_config("arithmetic", digits=2, min_digits=2, ops=["+"], n_train=20, n_eval=4)
    cfg.teacher.source = "base"
    cfg.sample.n, cfg.sample.n_problems = 2, 4
    cfg.log.wandb.mode, cfg.log.run_dir = "disabled", str(tmp_path / "run")
    for key, value in over.items():
        obj = cfg
        *path, last = key.split(".")
        for p in path:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    return cfg


def first_task(cfg):
    """(the split's first task, its rendered prompt) under `cfg.env`."""
    env, template = sample_mod.build_env(cfg)
    return env.train[0], template.render(env.train[0])


def read_lines(path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


# --------------------------------------------------------------------------- a scripted teacher

RUN_INFO = {
    "run_dir": "/runs/r1",
    "checkpoint": "/runs/r1/step_000007",
    "step": 7,
    "env": "arithmetic",
    "source": "run",
    "dtype": "float32",
}


class ScriptedTeacher:
    """`load_teacher` and `generate` stand-ins: completions come from `script[prompt text]`, a
    list of (text, finish reason, token count) per prompt, drawn in order."""

    def __init__(self, monkeypatch, script, info=RUN_INFO, context=1024):
        self.script, self.seeds, self.chunks, self.tok = script, [], [], CharTokenizer()
        model = SimpleNamespace(config=SimpleNamespace(max_seq_len=context))
        monkeypatch.setattr(sample_mod, "load_teacher", lambda t, m: (model, self.tok, dict(info)))
        monkeypatch.setattr(sample_mod, "generate", self.generate)

    def generate(self, model, prompt_ids, *, n, seed, stop_strings, tokenizer, **kw):
        self.seeds.append(seed)
        self.chunks.append(len(prompt_ids))
        rows = [row for p in prompt_ids for row in self.script[tokenizer.decode(p)][:n]]
        return SimpleNamespace(
            texts=[r[0] for r in rows],
            finish_reasons=[r[1] for r in rows],
            completion_ids=[[9] * r[2] for r in rows],
        )


def test_accepted_completions_are_deduplicated_capped_and_written_with_the_exact_schema(
    tmp_path, monkeypatch
):
    cfg = sample_cfg(tmp_path, seed=5, **{"sample.n": 4, "sample.n_problems": 2})
    cfg.sample.max_per_prompt, cfg.sample.batch_prompts = 2, 1
    cfg.teacher.source, cfg.teacher.path = "run", "/runs/r1"
    env = sample_mod.build_env(cfg)[0]
    (t0, t1), (a, b) = env.train[:2], (env.train[0].answer, env.train[1].answer)
    p0, p1 = f"Q: {t0.prompt}\nA: ", f"Q: {t1.prompt}\nA: "
    script = {
        p0: [
            (f"<think>ok</think><answer>{a}</answer>", "stop", 10),  # kept
            (f"  <think>ok</think><answer>{a}</answer>", "stop", 11),  # accepted, a duplicate
            (f"<answer>{a}</answer>", "stop", 12),  # correct, not in format
            (f"<think>2</think><answer>{a}</answer>\n", "stop", 13),  # kept, "\n" cut
        ],
        p1: [
            ("<think>x</think><answer>1</answer>", "stop", 14),  # in format, wrong
            (f"<think>a</think><answer>{b}</answer>", "stop", 15),  # kept
            (f"<think>b</think><answer>{b}</answer>", "stop", 16),  # kept
            (f"<think>c</think><answer>{b}</answer>", "stop", 17),  # over max_per_prompt
        ],
    }
    teacher = ScriptedTeacher(monkeypatch, script)
    summary = run(cfg)
    assert teacher.seeds == [5, 6] and teacher.chunks == [1, 1]  # chunk at prompt i: seed + i
    prov = {
        "source": "run",
        "path": "/runs/r1",
        "checkpoint": "/runs/r1/step_000007",
        "step": 7,
        "dtype": "float32",
        "adapter": None,
    }
    sampling = {"n": 4, "temperature": 1.0, "top_k": None, "top_p": None, "max_new_tokens": 64}
    sampling["seed"] = 5

    def line(prompt, completion, i, answer):
        rewards = {"math": 1.0, "format": 1.0}
        return {
            "prompt": prompt,
            "completion": completion,
            "task_id": f"arithmetic/train/{i}",
            "answer": answer,
            "rewards": rewards,
            "teacher": prov,
            "sampling": sampling,
        }

    assert read_lines(tmp_path / "run" / "samples.jsonl") == [
        line(p0, f"<think>ok</think><answer>{a}</answer>", 0, a),
        line(p0, f"<think>2</think><answer>{a}</answer>", 0, a),
        line(p1, f"<think>a</think><answer>{b}</answer>", 1, b),
        line(p1, f"<think>b</think><answer>{b}</answer>", 1, b),
    ]
    counts = {k: summary[k] for k in ("n_prompts", "drawn", "accepted", "written")}
    assert counts == {"n_prompts": 2, "drawn": 8, "accepted": 6, "written": 4}
    assert summary["prompts_with_any"] == 2 and summary["acceptance_rate"] == 6 / 8
    assert summary["pass_rates"] == {"correct": 7 / 8, "format": 7 / 8}
    assert summary["generated_tokens"] == sum(range(10, 18))
    assert summary["finish_reasons"] == {"stop": 8}
    assert json.loads((tmp_path / "run" / "sample.json").read_text()) == summary
    assert "job: sample" in (tmp_path / "run" / "config.yaml").read_text()


def test_a_prefilled_template_keeps_the_opened_think_in_the_prompt_and_scores_the_rest(
    tmp_path, monkeypatch
):
    cfg = sample_cfg(tmp_path, **{"sample.n": 2, "sample.n_problems": 1})
    cfg.env.template = "r1_zero_prefill"
    task, prompt = first_task(cfg)
    assert prompt.endswith("Assistant: <think>")
    inside = f" add the digits</think> <answer>{task.answer}</answer>"
    opened = f"<think>x</think><answer>{task.answer}</answer>"
    script = {prompt: [(inside, "stop", 5), (opened, "stop", 5)]}
    ScriptedTeacher(monkeypatch, script, {"source": "base", "path": None, "dtype": "float32"})
    summary = run(cfg)
    (only,) = read_lines(tmp_path / "run" / "samples.jsonl")  # a second <think> is not format
    assert (only["prompt"], only["completion"]) == (prompt, inside)
    assert summary["pass_rates"] == {"correct": 1.0, "format": 0.5}


def test_only_the_text_a_stopping_token_carried_past_the_stop_string_is_cut():
    assert close_at_stop("<answer>7</answer>\nQ: ", ("</answer>",)) == "<answer>7</answer>"
    assert close_at_stop("<answer>7", ("</answer>",)) == "<answer>7"
    assert close_at_stop("a<|im_end|>b</answer>c", ("</answer>", "<|im_end|>")) == "a<|im_end|>"


def test_a_reward_component_accepts_where_it_is_positive_and_an_empty_accept_keeps_all(
    tmp_path, monkeypatch
):
    cfg = sample_cfg(tmp_path, **{"sample.n": 3, "sample.n_problems": 1, "sample.accept": ["math"]})
    task, prompt = first_task(cfg)
    a = task.answer
    script = {
        prompt: [
            (f"<answer>{a}</answer>", "stop", 3),  # math 1, format 0
            ("<answer>0</answer>", "stop", 3),
            ("   ", "eos", 3),  # blank: never written
        ]
    }
    ScriptedTeacher(monkeypatch, script)
    assert [x["completion"] for x in read_lines(run(cfg)["out"])] == [f"<answer>{a}</answer>"]
    cfg.sample.accept, cfg.sample.out = [], str(tmp_path / "all.jsonl")
    summary = run(cfg)
    assert (summary["accepted"], summary["written"], summary["pass_rates"]) == (3, 2, {})


# --------------------------------------------------------------------------- config errors


def no_teacher(*args, **kwargs):
    raise AssertionError("the teacher was loaded before the configuration was checked")


@pytest.mark.parametrize(
    "over, match",
    [
        ({"sample.accept": ["correct", "bogus"]}, r"\['bogus'\].*\['correct', 'format', 'math'\]"),
        ({"teacher.source": "none"}, r"teacher\.source=none.*teacher\.path"),
        ({"sample.n": 0}, r"sample\.n=0"),
        ({"sample.split": "test"}, r"sample\.split='test'.*\['train', 'eval'\]"),
        ({"sample.n_problems": 0}, r"sample\.n_problems=0"),
        ({"sample.max_per_prompt": 0}, r"sample\.max_per_prompt=0"),
        ({"sample.batch_prompts": 0}, r"sample\.batch_prompts=0"),
    ],
)
def test_bad_sample_settings_are_config_errors_before_the_teacher_loads(
    tmp_path, monkeypatch, over, match
):
    monkeypatch.setattr(sample_mod, "load_teacher", no_teacher)
    with pytest.raises(ConfigError, match=match):
        run(sample_cfg(tmp_path, **over))
    assert not (tmp_path / "run").exists()


def test_a_prompt_longer_than_the_teachers_context_is_a_config_error(tmp_path, monkeypatch):
    ScriptedTeacher(monkeypatch, {}, context=70)
    with pytest.raises(ConfigError, match=r"exceeds the teacher's context of 70"):
        run(sample_cfg(tmp_path))


# --------------------------------------------------------------------------- real teachers


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.schema import register

    register()
    with initialize_config_dir(str(ROOT / "experiments" / "conf"), version_base=None):
        return OmegaConf.to_object(hydra_compose("sample", overrides=overrides))


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """The `sample` job of conf/sample.yaml with the built-in base as teacher (6 prompts, n=2)."""
    from experiments.jobs import get_job

    out = tmp_path_factory.mktemp("base")
    over = ["teacher.source=base", "sample.n_problems=6", "sample.n=2"]
    cfg = compose(over + [f"log.out_dir={out}", "log.wandb.mode=disabled"])
    assert (cfg.name, cfg.job, cfg.sample.accept) == (
        "sample_tiny",
        "sample",
        ["correct", "format"],
    )
    return cfg, get_job(cfg.job)(cfg, "")


def test_the_base_teachers_lines_rescore_correct_and_in_format_and_the_counts_add_up(base_run):
    from envs.base import build_env
    from envs.templates import get_template
    from rewards.scoring import build_scorer

    cfg, summary = base_run
    lines = read_lines(summary["out"])
    assert Path(summary["out"]) == Path(summary["run_dir"]) / "samples.jsonl"
    assert 1 <= summary["written"] == len(lines) <= summary["accepted"] <= summary["drawn"] == 12
    assert summary["prompts_with_any"] == len({x["task_id"] for x in lines})
    assert summary["acceptance_rate"] == summary["accepted"] / 12
    assert all(r >= summary["acceptance_rate"] for r in summary["pass_rates"].values())
    assert summary["generated_tokens"] > 0 and sum(summary["finish_reasons"].values()) == 12
    assert json.loads((Path(summary["run_dir"]) / "sample.json").read_text()) == summary
    env = build_env("arithmetic", digits=2, min_digits=2, ops=["+"], n_train=6000, n_eval=500)
    tasks = {t.meta["id"]: t for t in env.train[:6]}
    scorer = build_scorer(env, get_template("tiny"))  # an independent re-check
    v = scorer([x["completion"] for x in lines], [tasks[x["task_id"]] for x in lines])
    assert all(v.correct) and all(v.format_ok)
    for x in lines:
        task = tasks[x["task_id"]]
        assert x["prompt"] == f"Q: {task.prompt}\nA: " and x["answer"] == task.answer
        assert x["completion"].endswith("</answer>")
        assert x["teacher"]["source"] == "base" and x["sampling"]["n"] == 2


def test_the_same_config_writes_the_same_file(tmp_path):
    a = run(sample_cfg(tmp_path / "a", **{"sample.accept": []}))
    b = run(sample_cfg(tmp_path / "b", **{"sample.accept": []}))
    assert a["written"] > 0
    assert Path(a["out"]).read_bytes() == Path(b["out"]).read_bytes()


def test_a_run_directory_teacher_records_its_checkpoint_and_step(tmp_path):
    from experiments.train import run as train_run
    from tests.test_rl_trainer import tiny_cfg

    rl = tiny_cfg(tmp_path, **{"train.steps": 1, "log.run_dir": str(tmp_path / "rl")})
    train_run(rl)
    cfg = sample_cfg(tmp_path, **{"sample.accept": [], "sample.n_problems": 3})
    cfg.env, cfg.sampling.max_new_tokens = rl.env, 8
    cfg.teacher.source, cfg.teacher.path = "run", str(tmp_path / "rl")
    summary = run(cfg)
    assert summary["teacher"]["step"] == 1
    lines = read_lines(summary["out"])
    assert lines and all(x["teacher"]["step"] == 1 for x in lines)
    ckpt = Path(lines[0]["teacher"]["checkpoint"])
    assert ckpt.name == "step_000001" and ckpt.is_dir() and tmp_path / "rl" in ckpt.parents
    assert lines[0]["teacher"]["path"] == str(tmp_path / "rl")


def test_the_written_pairs_load_and_tokenize_as_sft_data(base_run):
    data = pytest.importorskip("rlreason.sft.data")
    _, summary = base_run
    examples = data.load_examples(summary["out"])
    tok = CharTokenizer()
    seqs = data.tokenize_examples(examples, tok, add_eos=True, max_len=256)
    assert len(seqs) == summary["written"]
    for ex, seq in zip(examples, seqs):
        head = tok.encode_prompt(ex.prompt)
        assert list(seq.ids) == head + tok.encode(ex.completion) + [tok.eos_id]
        assert seq.loss_start == len(head)
        assert seq.ids[-2] == tok.token_id("</answer>")  # the target closes its answer


def test_the_command_line_samples_and_reports_a_missing_teacher(tmp_path):
    cmd = [sys.executable, "-c", "from experiments.sample import main; main()"]
    args = [f"log.out_dir={tmp_path}", "log.wandb.mode=disabled"]
    bad = subprocess.run(cmd + args, capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "teacher.source=none" in bad.stderr
    good = subprocess.run(
        cmd + args + ["teacher.source=base", "sample.n_problems=3", "sample.n=2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert good.returncode == 0, good.stderr
    assert "[rlreason] sample: 6 drawn from 3 prompts" in good.stdout
    (out,) = tmp_path.glob("sample_tiny/*/samples.jsonl")
    assert (out.parent / "sample.json").is_file()
