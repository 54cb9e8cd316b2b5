"""Policy losses against hand-computed values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from skyrl_core.algorithms.losses import POLICY_LOSSES, cispo, dual_clip, gspo, regular
from skyrl_core.errors import UserError

T64 = torch.float64


def cfg(**kw):
    base = dict(
        eps_clip_low=0.2,
        eps_clip_high=0.2,
        clip_ratio_c=3.0,
        cispo=SimpleNamespace(cispo_eps_clip_low=0.0, cispo_eps_clip_high=5.0),
        loss_reduction="token_mean",
    )
    base.update(kw)
    return SimpleNamespace(**base)


def logr(ratios):
    """log_probs with old_log_probs = 0 so that r = the given ratios."""
    return torch.log(torch.tensor([ratios], dtype=T64))


def test_registry_names():
    assert set(POLICY_LOSSES) == {"regular", "dual_clip", "gspo", "cispo"}


def test_regular_both_branches_and_metrics():
    # eps 0.2/0.2, old = 0, r = exp(logp):
    #   r=1.5 A=+1: min(1.5, 1.2)   = 1.2  -> loss -1.2  (clipped branch active)
    #   r=0.5 A=+1: min(0.5, 0.8)   = 0.5  -> loss -0.5
    #   r=0.5 A=-1: min(-0.5, -0.8) = -0.8 -> loss  0.8  (clipped)
    #   r=1.5 A=-1: min(-1.5, -1.2) = -1.5 -> loss  1.5
    #   r=1.1 A=+2: min(2.2, 2.2)   = 2.2  -> loss -2.2  (tie: not counted as clipped)
    #   r=2.0 A=+1, masked out:      loss -1.2 (computed, but excluded from metrics)
    lp = logr([1.5, 0.5, 0.5, 1.5, 1.1, 2.0]).requires_grad_(True)
    old = torch.zeros_like(lp)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, 2.0, 1.0]], dtype=T64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]], dtype=T64)
    loss, met = regular(log_probs=lp, old_log_probs=old, advantages=adv, loss_mask=mask, config=cfg())
    torch.testing.assert_close(loss, torch.tensor([[-1.2, -0.5, 0.8, 1.5, -2.2, -1.2]], dtype=T64))
    assert met["clip_ratio"] == pytest.approx(2 / 5)
    # ppo_kl = mean(old - logp) over 5 valid = -(ln1.5 + ln0.5 + ln0.5 + ln1.5 + ln1.1)/5
    #        = -(2 ln 0.75 + ln 1.1)/5 = -(-0.5753641 + 0.0953102)/5 = 0.0960108
    assert met["ppo_kl"] == pytest.approx(0.0960108, abs=1e-6)
    assert all(isinstance(v, float) for v in met.values())
    # gradient d loss / d logp = -A r on the unclipped branch, 0 on the clipped one:
    #   [0, -0.5, 0, 1.5, -2.2, 0]
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[0.0, -0.5, 0.0, 1.5, -2.2, 0.0]], dtype=T64))


def test_regular_clip_higher():
    # eps_low 0.2, eps_high 0.28: r=1.5 A=1 -> min(1.5, 1.28) -> -1.28; r=0.7 A=-1 -> min(-0.7, -0.8) -> 0.8
    lp = logr([1.5, 0.7])
    loss, _ = regular(
        log_probs=lp,
        old_log_probs=torch.zeros_like(lp),
        advantages=torch.tensor([[1.0, -1.0]], dtype=T64),
        loss_mask=torch.ones_like(lp),
        config=cfg(eps_clip_high=0.28),
    )
    torch.testing.assert_close(loss, torch.tensor([[-1.28, 0.8]], dtype=T64))


def test_dual_clip_caps_negative_advantages():
    # c = 3, eps 0.2:
    #   r=5   A=-1: pg = -min(-5, -1.2) = 5 ; cap -c*A = 3 -> min(5, 3) = 3  (dual clip active)
    #   r=2   A=-1: pg = -min(-2, -1.2) = 2 ; min(2, 3) = 2
    #   r=0.5 A=-1: pg = -min(-0.5, -0.8) = 0.8 (clipped branch); min(0.8, 3) = 0.8
    #   r=5   A=+1: pg = -min(5, 1.2) = -1.2 (clipped branch); A > 0 so no cap
    lp = logr([5.0, 2.0, 0.5, 5.0])
    adv = torch.tensor([[-1.0, -1.0, -1.0, 1.0]], dtype=T64)
    mask = torch.ones_like(lp)
    loss, met = dual_clip(
        log_probs=lp, old_log_probs=torch.zeros_like(lp), advantages=adv, loss_mask=mask, config=cfg()
    )
    torch.testing.assert_close(loss, torch.tensor([[3.0, 2.0, 0.8, -1.2]], dtype=T64))
    assert met["dual_clip_ratio"] == pytest.approx(1 / 4)
    assert met["clip_ratio"] == pytest.approx(2 / 4)
    assert "ppo_kl" in met
    with pytest.raises(UserError):
        dual_clip(log_probs=lp, old_log_probs=lp, advantages=adv, loss_mask=mask, config=cfg(clip_ratio_c=1.0))


def test_gspo_uses_sequence_ratio():
    # row 0: logp - old = [0.1, 0.3, 5.0], mask [1,1,0] -> s = (0.1+0.3)/2 = 0.2, r = e^0.2 = 1.2214 on every
    #        token; A = +1 -> min(1.2214, 1.2) = 1.2 -> loss -1.2 (clipped; per-token PPO would give -e^0.1)
    # row 1: logp - old = [-0.1, 0, 0.1] -> s = 0, r = 1; A = -2 -> loss 2 (unclipped)
    # grad: row 0 clipped -> 0; row 1: d(-A r)/d logp_t = -A * r * 1 = 2 on each token
    old = torch.tensor([[0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]], dtype=T64)
    lp = (old + torch.tensor([[0.1, 0.3, 5.0], [-0.1, 0.0, 0.1]], dtype=T64)).requires_grad_(True)
    adv = torch.tensor([[1.0, 1.0, 1.0], [-2.0, -2.0, -2.0]], dtype=T64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=T64)
    loss, met = gspo(log_probs=lp, old_log_probs=old, advantages=adv, loss_mask=mask, config=cfg())
    torch.testing.assert_close(loss, torch.tensor([[-1.2, -1.2, -1.2], [2.0, 2.0, 2.0]], dtype=T64))
    assert met["clip_ratio"] == pytest.approx(2 / 5)
    # ppo_kl = mean(old - logp) over valid = -(0.1 + 0.3 - 0.1 + 0 + 0.1)/5 = -0.08
    assert met["ppo_kl"] == pytest.approx(-0.08)
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], dtype=T64))


def test_cispo_values_and_gradient_through_logp_only():
    # clip interval [1 - 0, 1 + 5] = [1, 6]; old = 0, r = exp(logp):
    #   r=0.5 A=+2: w = clip(0.5) = 1 -> loss = -2*1*ln0.5 = 2 ln 2 = 1.3862944   (clipped)
    #   r=2   A=+1: w = 2           -> loss = -1*2*ln2    = -1.3862944
    #   r=8   A=-1: w = 6           -> loss = 6 ln 8      = 12.4766493           (clipped)
    # d loss / d logp = -A * w (w detached): [-2, -2, 6]
    lp = logr([0.5, 2.0, 8.0]).requires_grad_(True)
    old = torch.zeros_like(lp).requires_grad_(True)
    adv = torch.tensor([[2.0, 1.0, -1.0]], dtype=T64).requires_grad_(True)
    loss, met = cispo(log_probs=lp, old_log_probs=old, advantages=adv, loss_mask=torch.ones_like(lp), config=cfg())
    ln2 = math.log(2.0)
    torch.testing.assert_close(loss, torch.tensor([[2 * ln2, -2 * ln2, 6 * 3 * ln2]], dtype=T64))
    assert met["clip_ratio"] == pytest.approx(2 / 3)
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[-2.0, -2.0, 6.0]], dtype=T64))
    assert old.grad is None  # the importance weight is stop-gradient


def test_tis_weight_optional():
    # regular loss at r = 1, A = 1 is -1. use_tis with cap 2: weight = min(exp(old - rollout), 2):
    #   old - rollout = ln 3 -> min(3, 2) = 2 -> -2 ; old - rollout = ln 0.5 -> 0.5 -> -0.5
    lp = torch.zeros(1, 2, dtype=T64)
    rollout = -torch.log(torch.tensor([[3.0, 0.5]], dtype=T64))
    kw = dict(log_probs=lp, old_log_probs=lp, advantages=torch.ones_like(lp), loss_mask=torch.ones_like(lp))
    loss, _ = regular(**kw, config=cfg(use_tis=True, tis_imp_ratio_cap=2.0), rollout_log_probs=rollout)
    torch.testing.assert_close(loss, torch.tensor([[-2.0, -0.5]], dtype=T64))
    loss_off, _ = regular(**kw, config=cfg(), rollout_log_probs=rollout)
    torch.testing.assert_close(loss_off, torch.tensor([[-1.0, -1.0]], dtype=T64))


def test_extreme_log_ratio_stays_finite():
    lp = torch.tensor([[100.0, -100.0]], dtype=T64)
    for name, fn in POLICY_LOSSES.items():
        loss, met = fn(
            log_probs=lp,
            old_log_probs=torch.zeros_like(lp),
            advantages=torch.tensor([[-1.0, 1.0]], dtype=T64),
            loss_mask=torch.ones_like(lp),
            config=cfg(),
        )
        assert torch.isfinite(loss).all(), name
