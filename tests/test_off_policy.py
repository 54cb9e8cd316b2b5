"""Off-policy correction (engine vs trainer log-probs) against hand-computed values (SkyRL 0.3 semantics)."""

from __future__ import annotations

import math

import pytest
import torch

from skyrl_core.algorithms.losses import regular
from skyrl_core.algorithms.off_policy import off_policy_correction, off_policy_correction_enabled
from skyrl_core.config.schema import OffPolicyCorrectionConfig
from skyrl_core.errors import UserError

T64 = torch.float64


def correct(ratios, mask=None, **keys):
    """Run the correction with old = 0 and rollout = -log(ratio), so that rho = the given ratios."""
    rho = torch.tensor(ratios, dtype=T64)
    mask = torch.ones_like(rho) if mask is None else torch.tensor(mask, dtype=T64)
    old = torch.zeros_like(rho)
    return off_policy_correction(old_log_probs=old, rollout_log_probs=-torch.log(rho), loss_mask=mask,
                                 config=OffPolicyCorrectionConfig(**keys))


def test_defaults_are_off():
    weights, mask, metrics = correct([[3.0, 0.5]])
    assert not off_policy_correction_enabled(OffPolicyCorrectionConfig())
    assert torch.equal(weights, torch.ones(1, 2, dtype=T64)) and torch.equal(mask, torch.ones(1, 2, dtype=T64))
    assert metrics == {}


def test_token_tis_is_the_old_use_tis_path():
    # rho = [3, 0.5], cap 2 -> weights [2, 0.5]; a regular loss of -1 per token (r = 1, A = 1) becomes [-2, -0.5]
    weights, mask, met = correct([[3.0, 0.5]], tis_ratio_type="token", token_tis_ratio_clip_high=2.0)
    torch.testing.assert_close(weights, torch.tensor([[2.0, 0.5]], dtype=T64))
    assert torch.equal(mask, torch.ones_like(mask))
    assert met["tis_token_clip_high_ratio"] == pytest.approx(0.5)
    assert met["is_ratio_mean"] == pytest.approx(1.75)
    assert (met["is_ratio_min"], met["is_ratio_max"]) == pytest.approx((0.5, 3.0))
    lp = torch.zeros(1, 2, dtype=T64)
    loss, _ = regular(log_probs=lp, old_log_probs=lp, advantages=torch.ones_like(lp), loss_mask=torch.ones_like(lp))
    torch.testing.assert_close(loss * weights, torch.tensor([[-2.0, -0.5]], dtype=T64))


def test_sequence_tis_product_of_valid_ratios_capped():
    # row 0: valid ratios [2, 2] (the 100 is masked) -> product 4 < cap 5 -> 4 on every token
    # row 1: [3, 3, 1] -> 9 -> capped at 5
    weights, _, met = correct([[2.0, 2.0, 100.0], [3.0, 3.0, 1.0]], mask=[[1, 1, 0], [1, 1, 1]],
                              tis_ratio_type="sequence", sequence_tis_ratio_clip_high=5.0)
    torch.testing.assert_close(weights, torch.tensor([[4.0] * 3, [5.0] * 3], dtype=T64))
    assert met["tis_seq_clip_high_ratio"] == pytest.approx(0.5)


def test_geometric_sequence_mask():
    # geometric mean = exp(mean log rho) vs [0.99, 1.01]:
    #   row 0: log [0.005, 0.005] -> e^0.005 = 1.0050 keep;   row 1: [0.02, 0] -> e^0.01 = 1.01005 > 1.01 drop
    #   row 2: [-0.03, 0.01] -> e^-0.01 = 0.99005 keep;       row 3: [-0.05, 0] -> e^-0.025 = 0.9753 < 0.99 drop
    logs = [[0.005, 0.005], [0.02, 0.0], [-0.03, 0.01], [-0.05, 0.0]]
    _, mask, met = correct([[math.exp(x) for x in row] for row in logs], sequence_mask_metric="geometric")
    torch.testing.assert_close(mask, torch.tensor([[1.0] * 2, [0.0] * 2, [1.0] * 2, [0.0] * 2], dtype=T64))
    assert met["geo_sequence_mask_masked_ratio"] == pytest.approx(0.5)
    assert met["geo_sequence_mask_over_high_ratio"] == pytest.approx(0.25)
    assert met["geo_sequence_mask_under_low_ratio"] == pytest.approx(0.25)


def test_product_sequence_mask():
    # product vs [0.5, 2]: [3, 1] -> 3 drop (over); [0.25, 1] -> 0.25 drop (under); [1.5, 1.2] -> 1.8 keep
    _, mask, met = correct([[3.0, 1.0], [0.25, 1.0], [1.5, 1.2]], sequence_mask_metric="product")
    torch.testing.assert_close(mask, torch.tensor([[0.0] * 2, [0.0] * 2, [1.0] * 2], dtype=T64))
    assert met["product_sequence_mask_masked_ratio"] == pytest.approx(2 / 3)
    assert met["product_sequence_mask_over_high_ratio"] == pytest.approx(1 / 3)


def test_outlier_rows_alone_take_effect():
    # thresholds [0.1, 10]: row 0 has a 20 -> dropped; row 1 has a 0.05 -> dropped; row 2 [1, 2] kept (its 1000
    # is on a masked token). SkyRL would ignore these keys without tis_ratio_type / sequence_mask_metric.
    _, mask, met = correct([[20.0, 1.0], [0.05, 1.0], [1.0, 2.0]], mask=[[1, 1], [1, 1], [1, 1]],
                           outlier_token_is_threshold_low=0.1, outlier_token_is_threshold_high=10.0)
    torch.testing.assert_close(mask, torch.tensor([[0.0] * 2, [0.0] * 2, [1.0] * 2], dtype=T64))
    assert met["outlier_seq_masked_ratio"] == pytest.approx(2 / 3)
    assert met["outlier_seq_over_high_ratio"] == pytest.approx(1 / 3)
    assert met["outlier_seq_under_low_ratio"] == pytest.approx(1 / 3)
    _, mask, _ = correct([[1.0, 1000.0]], mask=[[1, 0]], outlier_token_is_threshold_high=10.0)
    assert mask[0, 0].item() == 1.0


def test_icepop_token_mask():
    # [0.5, 2]: rho [0.4, 1, 3, 1.9(masked)] -> drop tokens 0 and 2; fractions of the 3 valid tokens
    _, mask, met = correct([[0.4, 1.0, 3.0, 1.9]], mask=[[1, 1, 1, 0]],
                           token_mask_is_threshold_low=0.5, token_mask_is_threshold_high=2.0)
    torch.testing.assert_close(mask, torch.tensor([[0.0, 1.0, 0.0, 1.0]], dtype=T64))
    assert met["token_mask_masked_ratio"] == pytest.approx(2 / 3)
    assert met["token_mask_over_high_ratio"] == pytest.approx(1 / 3)
    assert met["token_mask_under_low_ratio"] == pytest.approx(1 / 3)


def test_sequence_tis_uses_the_tokens_left_by_the_token_mask():
    # token mask high 2.5 drops the 3; the sequence weight is then 2 * 1.5 = 3 (not 9 -> capped 5)
    weights, mask, _ = correct([[3.0, 2.0, 1.5]], tis_ratio_type="sequence", token_mask_is_threshold_high=2.5)
    torch.testing.assert_close(mask, torch.tensor([[0.0, 1.0, 1.0]], dtype=T64))
    torch.testing.assert_close(weights, torch.full((1, 3), 3.0, dtype=T64))


def test_weights_carry_no_gradient():
    old = torch.zeros(1, 2, dtype=T64, requires_grad=True)
    weights, _, _ = off_policy_correction(old_log_probs=old, rollout_log_probs=torch.zeros(1, 2, dtype=T64),
                                          loss_mask=torch.ones(1, 2), config=OffPolicyCorrectionConfig(
                                              tis_ratio_type="token"))
    assert not weights.requires_grad


def test_errors_name_the_key():
    lp = torch.zeros(1, 2)
    with pytest.raises(UserError, match="off_policy_correction is set but the batch has no rollout log-probs"):
        off_policy_correction(old_log_probs=lp, rollout_log_probs=None, loss_mask=lp,
                              config=OffPolicyCorrectionConfig(tis_ratio_type="token"))
    with pytest.raises(UserError, match="tis_ratio_type='tok' is unknown"):
        correct([[1.0]], tis_ratio_type="tok")
    with pytest.raises(UserError, match="sequence_mask_metric='mean' is unknown"):
        correct([[1.0]], sequence_mask_metric="mean")
