import torch

from rlreason.model.gpt import GPT
from rlreason.rl.logprobs import pack, token_logprobs
from rlreason.sampling.engine import generate

from .conftest import tiny_config


def reference_logprobs(model, prompts, completions, temperature=1.0):
    out = []
    for p, c in zip(prompts, completions):
        logits = model(torch.tensor([p + c]))[0, len(p) - 1 : -1] / temperature  # (T, V)
        logp_all = torch.log_softmax(logits, -1)
        out.append(
            (
                logp_all.gather(-1, torch.tensor(c)[:, None])[:, 0],
                -(logp_all.exp() * logp_all).sum(-1),
            )
        )
    return out


def test_chunked_logprobs_and_entropy_equal_unchunked_references_for_mixed_lengths(tiny_model):
    r = generate(tiny_model, [[3, 4, 5, 6, 7], [8, 9]], n=2, max_new_tokens=9, seed=0, eos_id=5)
    packed = pack(r.prompt_ids, r.tokens, r.mask, pad_id=0)
    logp, ent = token_logprobs(tiny_model, packed, temperature=0.8, chunk=2)
    refs = reference_logprobs(tiny_model, r.prompt_ids, r.completion_ids, temperature=0.8)
    for b, (ref_lp, ref_ent) in enumerate(refs):
        n = len(r.completion_ids[b])
        torch.testing.assert_close(logp[b, :n], ref_lp, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ent[b, :n], ref_ent, atol=1e-5, rtol=1e-5)


def test_chunked_logprob_gradients_equal_unchunked_gradients():
    torch.manual_seed(0)
    model = GPT(tiny_config("llama"))
    prompts, comps = [[3, 4, 5], [6, 7, 8, 9]], [[10, 11, 12, 13], [14, 15, 16, 17]]
    tokens, mask = torch.tensor(comps), torch.ones(2, 4)
    packed = pack(prompts, tokens, mask, pad_id=0)
    grads = []
    for chunk in (1, 64):
        model.zero_grad()
        logp, ent = token_logprobs(model, packed, chunk=chunk)
        (logp.sum() + 0.1 * ent.sum()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_trainer_logprobs_equal_the_sampler_logprobs(tiny_model):
    r = generate(
        tiny_model, [[3, 4, 5, 6, 7], [8, 9]], n=3, max_new_tokens=7, seed=1, temperature=1.3
    )
    logp, _ = token_logprobs(tiny_model, pack(r.prompt_ids, r.tokens, r.mask, 0), temperature=1.3)
    torch.testing.assert_close(logp * r.mask, r.logprobs, atol=1e-5, rtol=1e-5)
