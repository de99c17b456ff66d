"""The SFT loop on a tiny random GPT (CPU, seconds): gradient accumulation, the completion-only
loss, the learning-rate schedule and clipping actually applied, LoRA, exact resume, learning."""

import math

import pytest
import torch
import torch.nn as nn

from rlreason.config import Config
from rlreason.lm_train import masked_lm_loss
from rlreason.model.gpt import GPT, GPTConfig
from rlreason.model.lora import apply_lora, lora_modules
from rlreason.model.tokenizer import CharTokenizer
from rlreason.optim import lr_at
from rlreason.sft.data import SFTExample, tokenize_examples
from rlreason.sft.trainer import SFTTrainer, batch_tensors, micro_batches

TOK = CharTokenizer()
PAIRS = [("Q: 12+7=\nA: ", "<answer>19</answer>"), ("Q: 3+4=\nA: ", "<answer>7</answer>")]
PAIRS += [("Q: 20+22=\nA: ", "<answer>42</answer>"), ("Q: 5+5=\nA: ", "<answer>10</answer>")]


class ListLogger:
    run_id = None

    def __init__(self):
        self.rows: list[tuple[int, dict]] = []

    def log(self, metrics, step):
        self.rows.append((step, dict(metrics)))

    def log_table(self, *a, **k):
        pass

    def finish(self):
        pass

    def train_rows(self) -> dict[int, dict]:
        return {
            s: {k: v for k, v in m.items() if not k.startswith("perf/")}
            for s, m in self.rows
            if "sft/loss" in m
        }


def sequences(pairs=PAIRS, repeat=1):
    ex = [SFTExample(p, c, f"d.jsonl:{i + 1}") for i, (p, c) in enumerate(pairs * repeat)]
    return tokenize_examples(ex, TOK, add_eos=True, max_len=64)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=TOK.vocab_size, n_layer=1, n_head=2, d_model=32, max_seq_len=64)
    return GPT(cfg)


def sft_cfg(**over) -> Config:
    cfg = Config()
    cfg.train.steps, cfg.train.save_every, cfg.train.progress = 4, 0, False
    cfg.sft.batch_size, cfg.sft.micro_batch_tokens = 4, 8192
    cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps = 1e-2, 1e-3, 2
    cfg.eval.every = 0
    for key, value in over.items():
        obj = cfg
        *path, last = key.split(".")
        for p in path:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    return cfg


def make(tmp_path, model=None, data=None, eval_data=(), **over):
    return SFTTrainer(
        sft_cfg(**over),
        model if model is not None else tiny_model(),
        data if data is not None else sequences(),
        list(eval_data),
        TOK.pad_id,
        tmp_path,
        ListLogger(),
    )


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_micro_batches_accumulate_to_the_gradient_of_one_batch(tmp_path):
    batch = sequences()
    one = make(tmp_path / "a", micro_batch_tokens=10_000)
    many = make(tmp_path / "b", micro_batch_tokens=1)  # every sequence alone
    assert len(micro_batches(batch, 1)) == 4 and len(micro_batches(batch, 10_000)) == 1
    loss_one, loss_many = one.accumulate(batch), many.accumulate(batch)
    # the reference: the completion-token mean over the whole padded batch, one backward
    ref = tiny_model()
    ids, mask = batch_tensors(batch, TOK.pad_id, "cpu")  # (4, T), (4, T-1)
    loss_ref = masked_lm_loss(ref, ids, mask)
    loss_ref.backward()
    loss_ref = float(loss_ref.detach())
    assert loss_one == pytest.approx(loss_ref, abs=1e-6)
    assert loss_many == pytest.approx(loss_ref, abs=1e-6)
    g_one, g_many, g_ref = grads(one.model), grads(many.model), grads(ref)
    assert g_one.keys() == g_many.keys() == g_ref.keys()
    for name in g_ref:
        torch.testing.assert_close(g_many[name], g_ref[name], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(g_one[name], g_ref[name], atol=1e-6, rtol=1e-5)


class Bigram(nn.Module):
    """logits[t] = table[ids[t]]: a model whose gradient shows which inputs the loss reads."""

    def __init__(self, vocab):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(vocab, vocab))  # (V, V)

    def forward(self, ids):
        return self.table[ids]  # (B, T, V)


def test_prompt_tokens_get_no_loss(tmp_path):
    data = tokenize_examples([SFTExample("ab", "c", "d.jsonl:1")], TOK, max_len=64)
    model = Bigram(TOK.vocab_size)
    trainer = make(tmp_path, model=model, data=data)
    loss = trainer.accumulate(data)
    # uniform logits: every counted target costs log V, so the mean is log V
    assert loss == pytest.approx(math.log(TOK.vocab_size), abs=1e-6)
    a, b, c = (TOK.stoi[ch] for ch in "abc")
    g = model.table.grad  # (V, V)
    # inputs a -> b is the prompt's own target (no loss); b -> c and c -> <eos> count
    assert torch.all(g[a] == 0)
    assert g[b, c] == pytest.approx(-0.5 * (1 - 1 / TOK.vocab_size))
    assert g[c, TOK.eos_id] == pytest.approx(-0.5 * (1 - 1 / TOK.vocab_size))


def test_every_step_runs_at_the_scheduled_learning_rate(tmp_path):
    trainer = make(tmp_path, **{"train.steps": 6, "optim.warmup_steps": 2})
    applied = []
    trainer.optimizer.register_step_pre_hook(
        lambda opt, args, kw: applied.append(opt.param_groups[0]["lr"])
    )
    trainer.run()
    want = [
        lr_at(s, warmup_steps=2, total_steps=6, initial_lr=0.0, peak_lr=1e-2, min_lr=1e-3)
        for s in range(1, 7)
    ]
    assert applied == pytest.approx(want) and len(set(want)) == 6
    assert [m["lr"] for m in trainer.logger.train_rows().values()] == pytest.approx(want)
    assert applied[-1] == pytest.approx(1e-3)  # the last step runs at min_lr


def test_gradients_are_clipped_to_optim_grad_clip_before_the_step(tmp_path):
    trainer = make(tmp_path, **{"train.steps": 2, "optim.grad_clip": 1e-3})
    norms = []

    def record(opt, args, kw):
        gs = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([x.norm() for x in gs]))))

    trainer.optimizer.register_step_pre_hook(record)
    trainer.run()
    logged = [m["policy/grad_norm"] for m in trainer.logger.train_rows().values()]
    assert all(n > 1e-2 for n in logged)  # the pre-clip norm is logged
    assert norms == pytest.approx([1e-3, 1e-3], rel=1e-4)


def test_lora_sft_changes_only_the_adapters(tmp_path):
    model = tiny_model()
    apply_lora(model, rank=2, alpha=4.0, targets=("q_proj", "v_proj"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    make(tmp_path, model=model, **{"train.steps": 3}).run()
    after = dict(model.named_parameters())
    lora = {n for n in before if "lora_" in n}
    assert lora and len(lora_modules(model)) == 2
    assert all(torch.equal(before[n], after[n]) for n in before if n not in lora)
    assert any(not torch.equal(before[n], after[n]) for n in lora)


def test_stopping_then_resuming_repeats_the_uninterrupted_run_exactly(tmp_path):
    data, held = sequences(repeat=3), sequences()[:2]
    over = {"train.steps": 6, "sft.batch_size": 5, "eval.every": 2, "train.save_every": 2}
    straight = make(tmp_path / "a", data=data, eval_data=held, **over)
    straight.run()
    first = make(tmp_path / "b", data=data, eval_data=held, **over, **{"train.stop_after": 3})
    assert first.run()["step"] == 3
    second = make(tmp_path / "b", data=data, eval_data=held, **over)
    second.resume(tmp_path / "b")
    assert (second.step, second.data_pos) == (3, 15)
    result = second.run()
    assert result["step"] == 6 and result["tokens"] == straight.tokens
    rows = {**first.logger.train_rows(), **second.logger.train_rows()}
    assert rows == straight.logger.train_rows()
    evals = [(s, m) for s, m in straight.logger.rows if "sft/eval_loss" in m]
    resumed = [(s, m) for s, m in first.logger.rows + second.logger.rows if "sft/eval_loss" in m]
    assert evals == resumed and [s for s, _ in evals] == [0, 2, 4, 6]
    for (name, p), q in zip(straight.model.named_parameters(), second.model.parameters()):
        assert torch.equal(p, q), name


def test_the_loss_falls_on_a_few_repeated_pairs(tmp_path):
    data = sequences(repeat=4)
    trainer = make(tmp_path, data=data, eval_data=sequences(), **{"train.steps": 40})
    result = trainer.run()
    losses = [m["sft/loss"] for m in trainer.logger.train_rows().values()]
    assert losses[-1] < 0.3 * losses[0]
    assert result["after"]["sft/eval_loss"] < 0.3 * result["before"]["sft/eval_loss"]
    assert result["optimizer_steps"] == 40
    assert result["tokens"] == 10 * sum(s.n_targets for s in data)  # 40 steps = 10 epochs


def test_non_finite_steps_are_skipped_then_abort_the_run(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    trainer = make(tmp_path, model=model, **{"train.max_bad_steps": 2})
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    metrics = trainer.train_step(1)
    assert metrics["train/skipped_updates"] == 1.0 and trainer.optimizer_steps == 0
    same = [torch.allclose(before[n], p, 0, 0, True) for n, p in model.named_parameters()]
    assert all(same)  # the NaN step changed nothing
    with pytest.raises(FloatingPointError, match="2 steps in a row"):
        trainer.train_step(2)


def test_float16_compute_steps_through_a_loss_scaler_that_the_checkpoint_keeps(tmp_path):
    import json

    from rlreason.model.precision import mixed_precision

    model = mixed_precision(tiny_model(), torch.float16)
    trainer = make(tmp_path, model=model, **{"train.steps": 3})
    result = trainer.run()
    rows = trainer.logger.train_rows()
    assert trainer.scaler is not None and result["optimizer_steps"] == 3
    assert rows[3]["sft/loss"] < rows[1]["sft/loss"] and rows[3]["train/loss_scale"] > 0
    state = json.loads((tmp_path / "checkpoints" / "step_000003" / "state.json").read_text())
    assert state["loss_scaler"]["scale"] == rows[3]["train/loss_scale"]
