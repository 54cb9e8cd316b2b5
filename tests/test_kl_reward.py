"""KL in the reward and its controller against hand-computed values (SkyRL 0.3 semantics)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from skyrl_core.algorithms.kl_reward import KLController, apply_kl_in_reward
from skyrl_core.errors import UserError

T64 = torch.float64


def test_apply_kl_in_reward_k1_values_and_metrics():
    # k1: kl = logp - logref. row 0: [0.5, -0.2, 9 (masked)], row 1: [0.1, 0.3, 0] with mask [1, 1, 0] / [1, 1, 1]
    # rewards r - 0.1 * kl * m: row 0 [0 - 0.05, 0 + 0.02, 1 (masked, unchanged)], row 1 [-0.01, -0.03, 2]
    # avg_kl = mean(row means) = mean((0.5 - 0.2)/2, (0.1 + 0.3 + 0)/3) = mean(0.15, 0.1333333) = 0.1416667
    # avg_kl_max = mean(max |kl| per row over valid) = mean(0.5, 0.3) = 0.4
    logp = torch.tensor([[0.5, -0.2, 9.0], [0.1, 0.3, 0.0]], dtype=T64)
    ref = torch.zeros_like(logp)
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]], dtype=T64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=T64)
    new, met = apply_kl_in_reward(token_rewards=rewards, log_probs=logp, ref_log_probs=ref, loss_mask=mask,
                                  coef=0.1, estimator="k1")
    torch.testing.assert_close(new, torch.tensor([[-0.05, 0.02, 1.0], [-0.01, -0.03, 2.0]], dtype=T64))
    assert met["loss/avg_kl"] == pytest.approx(0.1416667, abs=1e-6)
    assert met["loss/avg_kl_max"] == pytest.approx(0.4)
    assert met["loss/kl_loss_coef"] == pytest.approx(0.1)


def test_apply_kl_in_reward_k3_and_negative_coef():
    # k3 with logref - logp = -1: exp(-1) + 1 - 1 = 0.3678794; coef 2 -> reward 1 - 0.7357589
    # a negative coefficient is used as 0 (SkyRL: max(0, coef)), so rewards are unchanged
    logp, ref = torch.tensor([[1.0]], dtype=T64), torch.tensor([[0.0]], dtype=T64)
    kw = dict(token_rewards=torch.ones(1, 1, dtype=T64), log_probs=logp, ref_log_probs=ref,
              loss_mask=torch.ones(1, 1, dtype=T64), estimator="k3")
    new, _ = apply_kl_in_reward(coef=2.0, **kw)
    assert new.item() == pytest.approx(1.0 - 2 * math.exp(-1.0))
    unchanged, met = apply_kl_in_reward(coef=-0.5, **kw)
    assert unchanged.item() == 1.0 and met["loss/kl_loss_coef"] == 0.0


def algorithm(type="adaptive", coef=0.2, target=0.1, horizon=100):
    return SimpleNamespace(kl_loss_coef=coef, kl_ctrl=SimpleNamespace(type=type, kl_target=target, horizon=horizon))


def test_adaptive_controller_update():
    # value 0.2, target 0.1, horizon 100.
    # current 0.15: e = clip(0.5, -0.2, 0.2) = 0.2; n = 10 -> value *= 1 + 0.2 * 10 / 100 = 1.02 -> 0.204
    # current 0.09: e = -0.1; n = 50 -> value *= 1 - 0.05 = 0.95 -> 0.1938
    ctrl = KLController.from_config(algorithm())
    ctrl.update(current_kl=0.15, n_steps=10)
    assert ctrl.value == pytest.approx(0.204)
    ctrl.update(current_kl=0.09, n_steps=50)
    assert ctrl.value == pytest.approx(0.1938)


def test_fixed_controller_and_state_dict():
    ctrl = KLController.from_config(algorithm(type="fixed"))
    ctrl.update(current_kl=5.0, n_steps=1000)
    assert ctrl.value == 0.2
    adaptive = KLController.from_config(algorithm())
    adaptive.update(current_kl=1.0, n_steps=100)  # e = 0.2 -> value 0.24
    resumed = KLController.from_config(algorithm())
    resumed.load_state_dict(adaptive.state_dict())
    assert resumed.value == pytest.approx(0.24)
    with pytest.raises(UserError, match="kl_ctrl.type"):
        ctrl.load_state_dict(adaptive.state_dict())


def test_controller_errors():
    with pytest.raises(UserError, match="fixed or adaptive"):
        KLController.from_config(algorithm(type="pid"))
    with pytest.raises(UserError, match="horizon > 0"):
        KLController.from_config(algorithm(horizon=0))
