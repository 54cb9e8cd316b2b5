"""KL estimators, masked statistics, loss reduction and entropy against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from skyrl_core.algorithms.kl import kl_penalty
from skyrl_core.algorithms.reduction import (
    entropy_from_logits,
    masked_mean,
    masked_whiten,
    reduce_loss,
)
from skyrl_core.errors import UserError

T64 = torch.float64

# ---------------------------------------------------------------- KL


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        # point 1: logp = -1, logref = -2 -> d = 1;  point 2: logp = -2, logref = -1.5 -> d = -0.5
        ("k1", [1.0, -0.5]),
        ("k2", [0.5, 0.125]),  # 0.5*1^2, 0.5*0.25
        # exp(logref-logp) - (logref-logp) - 1: exp(-1)+1-1 = 0.3678794; exp(0.5)-0.5-1 = 0.1487213
        ("k3", [math.exp(-1.0), math.exp(0.5) - 1.5]),
        ("abs", [1.0, 0.5]),
    ],
)
def test_kl_estimators(estimator, expected):
    lp = torch.tensor([-1.0, -2.0], dtype=T64)
    ref = torch.tensor([-2.0, -1.5], dtype=T64)
    torch.testing.assert_close(kl_penalty(lp, ref, estimator), torch.tensor(expected, dtype=T64))


def test_kl_k3_clamped_and_unknown():
    # logref - logp = -100 clamped to -20: exp(-20) + 20 - 1 = 19.000000002
    out = kl_penalty(torch.tensor([0.0]), torch.tensor([-100.0]), "k3")
    assert out.item() == pytest.approx(19.0, abs=1e-6)
    with pytest.raises(UserError, match="k1, k2, k3, abs"):
        kl_penalty(torch.tensor([0.0]), torch.tensor([0.0]), "k4")


def test_kl_k3_result_is_not_clamped_unlike_skyrl():
    # logref - logp = 15: exp(15) - 15 - 1 = 3269001.37; SkyRL 0.3 compute_approx_kl would clamp it to 10.
    out = kl_penalty(torch.tensor([0.0], dtype=T64), torch.tensor([15.0], dtype=T64), "k3")
    assert out.item() == pytest.approx(math.exp(15.0) - 16.0)
    assert out.item() > 10.0


# ---------------------------------------------------------------- masked statistics


def test_masked_mean():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    m = torch.tensor([[True, False], [True, True], [False, False]])
    assert masked_mean(x, m).item() == pytest.approx(8 / 3)  # (1+3+4)/3
    torch.testing.assert_close(masked_mean(x, m, dim=-1), torch.tensor([1.0, 3.5, 0.0]))  # empty row -> 0


def test_masked_whiten():
    # valid [1,2,3]: mean 2, unbiased var (1+0+1)/2 = 1 -> [-1, 0, 1]; masked slot -> 0
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]], dtype=T64)
    m = torch.tensor([[1, 1, 1, 0]], dtype=T64)
    torch.testing.assert_close(masked_whiten(x, m), torch.tensor([[-1.0, 0.0, 1.0, 0.0]], dtype=T64))


def test_entropy_from_logits():
    logits = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],  # uniform over 4 -> ln 4 = 1.3862944
            [1000.0, 1000.0, -math.inf, -math.inf],  # uniform over 2, huge logits -> ln 2
            [0.0, math.log(3.0), -math.inf, -math.inf],  # p = [1/4, 3/4] -> 0.25 ln4 + 0.75 ln(4/3) = 0.5623351
        ],
        dtype=T64,
    )
    expected = torch.tensor([math.log(4), math.log(2), 0.25 * math.log(4) + 0.75 * math.log(4 / 3)], dtype=T64)
    torch.testing.assert_close(entropy_from_logits(logits), expected)


# ---------------------------------------------------------------- reduce_loss


def test_reduce_loss_hand_example():
    # losses [[1,2,3],[4,5,6]], mask [[1,1,0],[1,0,0]]; 3 valid tokens, 2 sequences
    #   token_mean              = (1+2+4)/3           = 7/3
    #   sequence_mean           = ((1+2)/2 + 4/1)/2   = 2.75
    #   seq_mean_token_sum_norm = (3/3 + 4/3)/2       = 7/6   (max_seq_len 3)
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=T64)
    m = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=T64)
    kw = dict(global_token_count=3, global_seq_count=2, max_seq_len=3)
    assert reduce_loss(x, m, reduction="token_mean", **kw).item() == pytest.approx(7 / 3)
    assert reduce_loss(x, m, reduction="sequence_mean", **kw).item() == pytest.approx(2.75)
    assert reduce_loss(x, m, reduction="seq_mean_token_sum_norm", **kw).item() == pytest.approx(7 / 6)


def test_reduce_loss_errors():
    x = torch.ones(1, 2)
    with pytest.raises(UserError, match="token_mean, sequence_mean, seq_mean_token_sum_norm"):
        reduce_loss(x, x, reduction="mean", global_token_count=2, global_seq_count=1)
    with pytest.raises(UserError, match="max_seq_len"):
        reduce_loss(x, x, reduction="seq_mean_token_sum_norm", global_token_count=2, global_seq_count=1)


@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "seq_mean_token_sum_norm"])
@pytest.mark.parametrize("split", [[1] * 6, [2, 2, 2], [3, 3], [1, 2, 3], [6]])
def test_reduce_loss_micro_batch_invariance(reduction, split):
    # 6 rows of different valid lengths (6, 5, 1, 3, 6, 2 tokens), float64. Summing the contributions of the
    # micro-batches must reproduce the full-batch value (to float64 rounding, rel 1e-12), and the full-batch
    # value must match the definition evaluated with plain python arithmetic.
    torch.manual_seed(0)
    x = torch.randint(-40, 40, (6, 6)).to(T64) / 8
    lengths = [6, 5, 1, 3, 6, 2]
    m = torch.zeros(6, 6, dtype=T64)
    for i, n in enumerate(lengths):
        m[i, :n] = 1
    kw = dict(reduction=reduction, global_token_count=sum(lengths), global_seq_count=6, max_seq_len=6)
    full = reduce_loss(x, m, **kw)
    # Independent reference from the definitions:
    rows = [x[i, : lengths[i]].tolist() for i in range(6)]
    if reduction == "token_mean":
        ref = sum(sum(r) for r in rows) / sum(lengths)
    elif reduction == "sequence_mean":
        ref = sum(sum(r) / len(r) for r in rows) / 6
    else:
        ref = sum(sum(r) / 6 for r in rows) / 6
    assert full.item() == pytest.approx(ref, rel=1e-12)
    parts, start = [], 0
    for size in split:
        parts.append(reduce_loss(x[start : start + size], m[start : start + size], **kw))
        start += size
    assert sum(p.item() for p in parts) == pytest.approx(full.item(), rel=1e-12, abs=1e-12)
