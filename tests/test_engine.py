import pytest
import torch

from rlreason.model.gpt import GPT
from rlreason.sampling.draw import draw, filter_logits
from rlreason.sampling.engine import generate

from .conftest import tiny_config

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]


def greedy_by_recomputation(model, prompt, steps):
    ids = torch.tensor([prompt])
    for _ in range(steps):
        ids = torch.cat([ids, model(ids)[0, -1].argmax().view(1, 1)], 1)
    return ids[0, len(prompt) :].tolist()


def test_greedy_cached_decoding_equals_full_recomputation_for_mixed_prompt_lengths(tiny_model):
    r = generate(tiny_model, PROMPTS, n=2, max_new_tokens=15, temperature=0)
    for i, p in enumerate(PROMPTS):
        ref = greedy_by_recomputation(tiny_model, p, 15)
        assert r.completion_ids[2 * i] == ref and r.completion_ids[2 * i + 1] == ref


def test_sampler_logprobs_equal_the_recomputed_logprobs(tiny_model):
    r = generate(tiny_model, PROMPTS, n=2, max_new_tokens=10, temperature=0.7, seed=3)
    for b, (p, c) in enumerate(zip(r.prompt_ids, r.completion_ids)):
        ids = torch.tensor([p + c])
        logits = tiny_model(ids)[0, len(p) - 1 : -1] / 0.7  # (T, V)
        ref = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c)[:, None])[:, 0]
        torch.testing.assert_close(r.logprobs[b, : len(c)], ref, atol=1e-5, rtol=1e-5)


def test_prefix_sharing_equals_repeating_the_prompt_n_times(tiny_model):
    kw = dict(n=4, max_new_tokens=12, temperature=1.0, top_k=20, top_p=0.95, seed=7)
    shared = generate(tiny_model, PROMPTS, **kw)
    repeated = generate(tiny_model, PROMPTS, share_prefix=False, **kw)
    naive = generate(tiny_model, PROMPTS, use_cache=False, compact=False, **kw)
    assert shared.completion_ids == repeated.completion_ids == naive.completion_ids
    torch.testing.assert_close(shared.logprobs, naive.logprobs, atol=1e-5, rtol=1e-5)
    assert shared.prompt_ids == [p for p in PROMPTS for _ in range(4)]


def test_same_seed_gives_same_rollouts_and_another_seed_differs(tiny_model):
    a = generate(tiny_model, PROMPTS, n=3, max_new_tokens=12, seed=1)
    b = generate(tiny_model, PROMPTS, n=3, max_new_tokens=12, seed=1)
    c = generate(tiny_model, PROMPTS, n=3, max_new_tokens=12, seed=2)
    assert a.completion_ids == b.completion_ids and a.completion_ids != c.completion_ids


def test_stop_sequences_and_eos_end_each_row_independently():
    torch.manual_seed(0)
    model = GPT(tiny_config("gpt2", vocab_size=20))
    # force each row's next token from a per-row script by overwriting the output logits
    scripts = [[3, 4, 5, 6, 7, 8], [9, 2, 9, 9, 9, 9], [3, 3, 3, 3, 3, 3]]
    step = {"t": 0}

    def force(module, inputs, output):  # output (3, T, V)
        forced = torch.full_like(output, -1e4)
        for b, script in enumerate(scripts):
            forced[b, -1, script[step["t"]]] = 0.0
        step["t"] += 1
        return forced

    handle = model.lm_head.register_forward_hook(force)
    try:  # one-token prompts and n=1 keep the batch at 3 rows; no compaction keeps row order
        r = generate(
            model,
            [[1], [1], [1]],
            n=1,
            max_new_tokens=6,
            temperature=0,
            eos_id=2,
            stop_ids=[[5, 6], [11]],
            compact=False,
        )
    finally:
        handle.remove()
    assert r.completion_ids == [[3, 4, 5, 6], [9, 2], [3, 3, 3, 3, 3, 3]]
    assert r.finish_reasons == ["stop", "eos", "length"]
    assert r.mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1] * 6]
    assert (r.logprobs[r.mask == 0] == 0).all()


def test_compaction_does_not_change_results(tiny_model):
    kw = dict(n=3, max_new_tokens=14, temperature=1.0, seed=11, eos_id=7, stop_ids=[[9], [3, 4]])
    a = generate(tiny_model, PROMPTS, compact=True, **kw)
    b = generate(tiny_model, PROMPTS, compact=False, **kw)
    assert a.finish_reasons == b.finish_reasons and a.completion_ids == b.completion_ids
    assert {"eos", "stop"} & set(a.finish_reasons)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=1e-5)


def test_top_k_and_top_p_keep_the_expected_tokens():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, 2, None)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, None, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, None, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, None, 0.1)).tolist() == [
        [True, False, False, False]
    ]


def test_top_k_one_sampling_is_greedy(tiny_model):
    g = generate(tiny_model, PROMPTS, n=2, max_new_tokens=8, temperature=0)
    k1 = generate(tiny_model, PROMPTS, n=2, max_new_tokens=8, temperature=1.3, top_k=1, seed=5)
    assert g.completion_ids == k1.completion_ids


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(n=0), "n >= 1"),
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(max_new_tokens=1000), "max_seq_len"),
    ],
)
def test_bad_arguments_are_clear_errors(tiny_model, kw, msg):
    args = dict(n=1, max_new_tokens=4)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        generate(tiny_model, PROMPTS, **args)


@pytest.mark.parametrize("prompts", [[[5, 6], [7, 50]], [[5, -1]], [[5, 6.0]]])
def test_prompt_ids_outside_the_vocabulary_are_a_clear_error(tiny_model, prompts):
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        generate(tiny_model, prompts, n=1, max_new_tokens=2)


def test_texts_are_decoded_with_the_given_tokenizer(tiny_model):
    class Tok:
        pad_id, eos_id = 0, None

        def decode(self, ids):
            return ",".join(map(str, ids))

    r = generate(tiny_model, PROMPTS, n=1, max_new_tokens=3, temperature=0, tokenizer=Tok())
    assert r.texts == [",".join(map(str, c)) for c in r.completion_ids]


def test_draw_picks_the_token_whose_interval_holds_u_and_skips_empty_intervals():
    probs = torch.tensor([0.2, 0.0, 0.5, 0.3]).expand(6, 4)  # CDF 0.2, 0.2, 0.7, 1.0
    u = torch.tensor([[0.0], [0.1999], [0.2], [0.69], [0.71], [0.9999]])
    assert draw(probs, u).tolist() == [0, 0, 2, 2, 3, 3]


def test_draw_never_lands_on_a_zero_probability_tail_even_at_u_equal_one():
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [2.0, 0.0, 6.0, 0.0]])  # rows need not sum to 1
    assert draw(probs, torch.ones(2, 1)).tolist() == [1, 2]  # u*total == total
    assert draw(probs, torch.tensor([[0.3], [0.3]])).tolist() == [0, 2]  # 2.4 of 8 → 2


def test_draw_frequencies_match_the_probabilities_and_zeros_are_never_drawn():
    p = torch.tensor([0.1, 0.0, 0.6, 0.299, 0.001])
    n = 200_000
    u = torch.rand(n, 1, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(draw(p.expand(n, 5), u), minlength=5).double()
    assert counts[1] == 0
    sigma = (n * p * (1 - p)).sqrt()
    assert ((counts - n * p).abs() <= 5 * sigma + 1).all(), counts


def test_draw_rejects_rows_without_finite_positive_mass():
    for bad in ([float("nan"), 0.5], [0.0, 0.0], [float("inf"), 1.0]):
        with pytest.raises(FloatingPointError, match="non-finite"):
            draw(torch.tensor([bad]), torch.zeros(1, 1))


def test_a_model_with_nan_weights_fails_sampling_with_a_clear_error(tiny_model):
    with torch.no_grad():
        tiny_model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        generate(tiny_model, PROMPTS, n=2, max_new_tokens=4, seed=0)


def test_draw_across_blocks_skips_zero_blocks_and_reaches_the_partial_last_block():
    p = torch.zeros(1000)  # blocks of 256: [0,256) [256,512) [512,768) tail
    p[3], p[300], p[800], p[999] = 0.2, 0.3, 0.1, 0.4  # block [512,768) empty
    u = torch.tensor([[0.0], [0.1999], [0.2001], [0.4999], [0.5001], [0.5999], [0.6001], [1.0]])
    assert draw(p.expand(8, 1000), u).tolist() == [3, 3, 300, 300, 800, 800, 999, 999]
    n = 100_000
    counts = torch.bincount(
        draw(p.expand(n, 1000), torch.rand(n, 1, generator=torch.Generator().manual_seed(1))),
        minlength=1000,
    )
    assert set(counts.nonzero()[:, 0].tolist()) == {3, 300, 800, 999}
    expected = n * p[[3, 300, 800, 999]]
    assert (
        (counts[[3, 300, 800, 999]] - expected).abs() <= 5 * (expected * (1 - expected / n)).sqrt()
    ).all()
