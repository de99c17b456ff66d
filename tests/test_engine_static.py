"""The static-shape decode loop (`generate(static=True)`) against the eager reference loop."""

import pytest
import torch

from rlreason.model.gpt import GPT
from rlreason.model.tokenizer import CharTokenizer
from rlreason.sampling.draw import draw, sample_next
from rlreason.sampling.engine import generate
from rlreason.sampling.static import draw_nosync, sample_next_nosync

from .conftest import tiny_config

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
SETTINGS = [
    dict(temperature=0),
    dict(temperature=1.0, seed=3),
    dict(temperature=0.8, top_k=10, top_p=0.9, seed=4, eos_id=7, stop_ids=[[9], [3, 4]]),
]


def assert_same(a, b):
    assert a.completion_ids == b.completion_ids
    assert a.finish_reasons == b.finish_reasons
    assert a.tokens.tolist() == b.tokens.tolist() and a.mask.tolist() == b.mask.tolist()
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=1e-5)
    assert a.texts == b.texts and a.prompt_ids == b.prompt_ids


@pytest.mark.parametrize("kw", SETTINGS, ids=["greedy", "seeded", "topk-topp-stops"])
@pytest.mark.parametrize("share_prefix", [True, False])
def test_static_loop_gives_the_eager_tokens_logprobs_and_finish_reasons(
    tiny_model, kw, share_prefix
):
    eager = generate(tiny_model, PROMPTS, n=3, max_new_tokens=20, **kw)
    static = generate(
        tiny_model, PROMPTS, n=3, max_new_tokens=20, static=True, check_every=4,
        share_prefix=share_prefix, **kw,
    )  # fmt: skip
    assert_same(eager, static)


@pytest.mark.parametrize("check_every", [1, 3, 16, 100])
def test_static_loop_results_do_not_depend_on_how_often_the_host_checks(tiny_model, check_every):
    kw = dict(n=2, max_new_tokens=14, temperature=1.0, seed=11, eos_id=7, stop_ids=[[9]])
    assert_same(generate(tiny_model, PROMPTS, **kw), generate(
        tiny_model, PROMPTS, static=True, check_every=check_every, **kw
    ))  # fmt: skip


def test_static_loop_matches_eager_on_a_data_parallel_slice(tiny_model):
    kw = dict(n=2, max_new_tokens=10, temperature=1.0, seed=5, row_offset=4, total_rows=12)
    assert_same(
        generate(tiny_model, PROMPTS, **kw), generate(tiny_model, PROMPTS, static=True, **kw)
    )


def char_model():
    tok = CharTokenizer()
    torch.manual_seed(1)
    return GPT(tiny_config("llama", vocab_size=tok.vocab_size, max_seq_len=128)).eval(), tok


def test_stop_strings_trim_rows_that_stopped_between_host_checks_exactly_as_eager():
    model, tok = char_model()
    prompts = [tok.encode("Q: 12+7\nA: "), tok.encode("hi"), tok.encode("The cat sat ")]
    kw = dict(n=4, max_new_tokens=40, temperature=1.0, seed=0, tokenizer=tok, eos_id=tok.eos_id)
    probe = generate(model, prompts, **kw)
    # stop strings that occur mid-way in several of the eager completions
    stops = sorted({t[3:5] for t in probe.texts if len(t) > 8})[:4] + ["\n"]
    eager = generate(model, prompts, stop_strings=stops, **kw)
    static = generate(model, prompts, stop_strings=stops, static=True, check_every=16, **kw)
    assert "stop" in eager.finish_reasons
    assert_same(eager, static)


def test_rows_that_finish_early_contribute_nothing_after_their_stop(tiny_model):
    r = generate(
        tiny_model, PROMPTS, n=4, max_new_tokens=16, temperature=1.0, seed=2, eos_id=7,
        stop_ids=[[9]], static=True, check_every=8,
    )  # fmt: skip
    assert {"eos", "stop"} & set(r.finish_reasons)
    for b, c in enumerate(r.completion_ids):
        k = len(c)
        assert r.mask[b, :k].eq(1).all() and r.mask[b, k:].eq(0).all()
        assert r.logprobs[b, k:].eq(0).all() and r.tokens[b, k:].eq(0).all()
        if r.finish_reasons[b] == "eos":
            assert c[-1] == 7 and 7 not in c[:-1]


def test_one_token_prompts_and_a_single_step_work(tiny_model):
    kw = dict(n=2, max_new_tokens=1, temperature=1.0, seed=0)
    assert_same(generate(tiny_model, [[3], [4]], **kw), generate(
        tiny_model, [[3], [4]], static=True, **kw
    ))  # fmt: skip


def test_static_loop_raises_clearly_on_non_finite_logits_and_on_cpu_graph_flags(tiny_model):
    with pytest.raises(ValueError, match="CUDA"):
        generate(tiny_model, PROMPTS, n=1, max_new_tokens=3, cuda_graph=True)
    with pytest.raises(ValueError, match="CUDA"):
        generate(tiny_model, PROMPTS, n=1, max_new_tokens=3, compile=True)
    with torch.no_grad():
        tiny_model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        generate(tiny_model, PROMPTS, n=2, max_new_tokens=4, seed=0, static=True)


def test_sync_free_draws_equal_the_reference_draws():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 700, generator=g) * 3
    logits[:8, 300:] = float("-inf")  # zero-mass tails and blocks
    u = torch.rand(64, 1, generator=g)
    u[:2] = 1.0
    probs = torch.softmax(logits, -1)
    tok, bad = draw_nosync(probs, u)
    assert tok.tolist() == draw(probs, u).tolist() and not bad.any()
    for args in [(0.0, None, None), (0.7, None, None), (1.0, 20, 0.9)]:
        ref, nos = sample_next(logits, *args, u), sample_next_nosync(logits, *args, u)
        assert ref[0].tolist() == nos[0].tolist() and torch.equal(ref[1], nos[1])


@pytest.mark.gpu
@pytest.mark.parametrize("flags", [dict(cuda_graph=True), dict(compile=True)])
def test_cuda_graph_and_compiled_static_loops_equal_eager_on_cuda(flags):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    model = GPT(tiny_config("llama")).cuda().eval()
    for kw in SETTINGS:
        eager = generate(model, PROMPTS, n=3, max_new_tokens=20, **kw)
        fast = generate(model, PROMPTS, n=3, max_new_tokens=20, static=True, **flags, **kw)
        assert eager.completion_ids == fast.completion_ids
        assert eager.finish_reasons == fast.finish_reasons
        torch.testing.assert_close(eager.logprobs, fast.logprobs, atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
def test_static_loop_on_cuda_bf16_matches_eager_greedy_mostly():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    model = GPT(tiny_config("llama")).cuda().to(torch.bfloat16).eval()
    a = generate(model, PROMPTS, n=2, max_new_tokens=16, temperature=0)
    b = generate(
        model, PROMPTS, n=2, max_new_tokens=16, temperature=0, static=True, cuda_graph=True
    )
    same = sum(x == y for x, y in zip(a.completion_ids, b.completion_ids))
    assert same >= len(a.completion_ids) - 1  # bf16 kernels round differently: near-ties may flip
