"""Chunked token log-probs and entropies: a hand-computed case, and values and gradients against plain autograd."""

from __future__ import annotations

import math

import pytest
import torch

from skyrl_core.workers import token_logprobs as module
from skyrl_core.workers.token_logprobs import token_logprobs


def test_hand_computed_logprob_entropy_and_gradient():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, float("-inf")]], requires_grad=True)
    logprobs, entropy = token_logprobs(logits, torch.tensor([0, 1]), torch.tensor([1, 0]), with_entropy=True)
    # row 0: softmax = (1/4, 3/4); token 1 -> log 3/4; H = -(1/4 log 1/4 + 3/4 log 3/4)
    # row 1: softmax = (1, 0); token 0 -> log 1 = 0; H = 0 (the -inf logit contributes nothing)
    assert logprobs.tolist() == pytest.approx([math.log(0.75), 0.0], abs=1e-6)
    assert entropy.tolist() == pytest.approx([-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), 0.0], abs=1e-6)
    logprobs.sum().backward()
    # d log p_t / d z_j = 1[j = t] - p_j
    assert logits.grad[0].tolist() == pytest.approx([-0.25, 0.25], abs=1e-6)
    assert logits.grad[1].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def _reference(logits, rows, targets, temperature):
    z = logits[rows].float() / temperature
    logprobs = torch.log_softmax(z, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    probs = torch.softmax(z, dim=-1)
    return logprobs, -(probs * torch.log_softmax(z, dim=-1)).sum(-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_matches_autograd_across_chunks_and_repeated_rows(monkeypatch, dtype, temperature):
    monkeypatch.setitem(module.CHUNK_BYTES, "cpu", 3 * 4 * 50)  # 3 rows of a 50-token vocabulary per chunk
    gen = torch.Generator().manual_seed(0)
    base = (torch.randn(9, 50, generator=gen) * 3).to(dtype)
    rows = torch.tensor([0, 2, 2, 3, 5, 6, 7, 8, 0, 4])  # row 2 and row 0 picked twice, row 1 never
    targets = torch.randint(0, 50, (10,), generator=gen)
    upstream = torch.randn(10, generator=gen)
    results = []
    for fn in (_reference, lambda *a: token_logprobs(*a[:3], temperature=a[3], with_entropy=True)):
        logits = base.clone().requires_grad_(True)
        logprobs, entropy = fn(logits, rows, targets, temperature)
        (logprobs * upstream).sum().backward()
        assert logits.grad.dtype == dtype
        results.append((logprobs.detach(), entropy.detach(), logits.grad.float()))
    (ref_lp, ref_entropy, ref_grad), (lp, entropy, grad) = results
    torch.testing.assert_close(lp, ref_lp, atol=1e-5, rtol=0)
    torch.testing.assert_close(entropy, ref_entropy, atol=1e-5, rtol=0)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2  # bf16 gradients round once per row either way
    torch.testing.assert_close(grad, ref_grad, atol=tolerance, rtol=0)
    assert torch.all(grad[1] == 0) and grad[2].abs().sum() > 0


def test_entropy_carries_no_gradient_and_is_optional():
    logits = torch.randn(4, 7, requires_grad=True)
    logprobs, entropy = token_logprobs(logits, torch.arange(4), torch.zeros(4, dtype=torch.long))
    assert entropy is None and logprobs.requires_grad
    _, entropy = token_logprobs(logits, torch.arange(4), torch.zeros(4, dtype=torch.long), with_entropy=True)
    assert not entropy.requires_grad
