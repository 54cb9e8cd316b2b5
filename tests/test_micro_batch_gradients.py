"""Gradients w.r.t. log_probs do not depend on how a mini-batch is split into micro-batches.

Each micro-batch's loss is ``reduce_loss(token_losses * token_weights, loss_mask * token_mask, ...)`` with the
global token / row counts of the whole mini-batch (as the policy worker does); the summed gradients of the parts
must equal the gradient of the whole.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from skyrl_core.algorithms.covariance_losses import kl_cov
from skyrl_core.algorithms.losses import POLICY_LOSSES
from skyrl_core.algorithms.off_policy import off_policy_correction
from skyrl_core.algorithms.reduction import reduce_loss
from skyrl_core.config.schema import OffPolicyCorrectionConfig

T64 = torch.float64
ROWS, T = 6, 5
CONFIG = SimpleNamespace(
    eps_clip_low=0.2, eps_clip_high=0.28, clip_ratio_c=3.0,
    cispo=SimpleNamespace(cispo_eps_clip_low=0.0, cispo_eps_clip_high=5.0),
    sapo=SimpleNamespace(tau_pos=1.0, tau_neg=1.05),
    kl_cov=SimpleNamespace(kl_cov_frac=0.2, ppo_kl_coef=1.0),
)
CORRECTION = OffPolicyCorrectionConfig(tis_ratio_type="token", token_tis_ratio_clip_high=1.05,
                                       sequence_mask_metric="geometric", geo_mask_low=0.97, geo_mask_high=1.03,
                                       token_mask_is_threshold_low=0.9, token_mask_is_threshold_high=1.1)


def batch():
    generator = torch.Generator().manual_seed(0)
    old = -torch.rand(ROWS, T, generator=generator, dtype=T64) * 3
    log_probs = old + (torch.rand(ROWS, T, generator=generator, dtype=T64) - 0.5) * 0.6
    rollout = old + (torch.rand(ROWS, T, generator=generator, dtype=T64) - 0.5) * 0.3
    advantages = torch.randn(ROWS, 1, generator=generator, dtype=T64).expand(ROWS, T).clone()
    mask = torch.zeros(ROWS, T, dtype=T64)
    for row, length in enumerate([5, 3, 1, 4, 5, 2]):
        mask[row, :length] = 1
    return log_probs, old, rollout, advantages, mask


def gradient(loss_fn, reduction, split):
    log_probs, old, rollout, advantages, mask = batch()
    log_probs.requires_grad_(True)
    counts = dict(reduction=reduction, global_token_count=float(mask.sum()), global_seq_count=float(ROWS),
                  max_seq_len=T)
    start = 0
    for size in split:
        rows = slice(start, start + size)
        start += size
        token_losses, _ = loss_fn(log_probs=log_probs[rows], old_log_probs=old[rows], advantages=advantages[rows],
                                  loss_mask=mask[rows], config=CONFIG, rollout_log_probs=rollout[rows])
        weights, token_mask, _ = off_policy_correction(old_log_probs=old[rows], rollout_log_probs=rollout[rows],
                                                       loss_mask=mask[rows], config=CORRECTION)
        reduce_loss(token_losses * weights, mask[rows] * token_mask, **counts).backward()
    return log_probs.grad


@pytest.mark.parametrize("name", sorted(POLICY_LOSSES))
@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean", "seq_mean_token_sum_norm"])
def test_gradient_is_independent_of_the_micro_batch_split(name, reduction):
    whole = gradient(POLICY_LOSSES[name], reduction, [ROWS])
    assert whole.abs().sum() > 0  # the case exercises the loss
    for split in ([1] * ROWS, [2, 2, 2], [1, 2, 3], [4, 2]):
        torch.testing.assert_close(gradient(POLICY_LOSSES[name], reduction, split), whole, rtol=1e-12, atol=1e-12)


def test_correction_masks_something_in_this_case():
    _, old, rollout, _, mask = batch()
    _, token_mask, metrics = off_policy_correction(old_log_probs=old, rollout_log_probs=rollout, loss_mask=mask,
                                                   config=CORRECTION)
    assert 0 < float((mask * (1 - token_mask)).sum()) < float(mask.sum())
    assert metrics["tis_token_clip_high_ratio"] > 0  # the cap fires too


def test_covariance_selection_is_per_micro_batch():
    # kl_cov picks the top 20% covariance tokens among the tokens it is given, so a different split can change
    # which tokens carry the KL term (documented; SkyRL and verl behave the same way).
    whole = gradient(kl_cov, "token_mean", [ROWS])
    assert not torch.allclose(gradient(kl_cov, "token_mean", [1] * ROWS), whole)
