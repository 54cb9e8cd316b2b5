"""Policy losses against hand-computed values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from skyrl_core.algorithms.covariance_losses import clip_cov, kl_cov
from skyrl_core.algorithms.losses import POLICY_LOSSES, cispo, dual_clip, gspo, regular, sapo
from skyrl_core.errors import UserError

T64 = torch.float64


def cfg(**kw):
    base = dict(
        eps_clip_low=0.2,
        eps_clip_high=0.2,
        clip_ratio_c=3.0,
        cispo=SimpleNamespace(cispo_eps_clip_low=0.0, cispo_eps_clip_high=5.0),
        sapo=SimpleNamespace(tau_pos=1.0, tau_neg=1.05),
        clip_cov=SimpleNamespace(clip_ratio=0.0002, clip_cov_lb=1.0, clip_cov_ub=5.0),
        kl_cov=SimpleNamespace(kl_cov_frac=0.2, ppo_kl_coef=1.0),
        loss_reduction="token_mean",
    )
    base.update(kw)
    return SimpleNamespace(**base)


def logr(ratios):
    """log_probs with old_log_probs = 0 so that r = the given ratios."""
    return torch.log(torch.tensor([ratios], dtype=T64))


def test_registry_names():
    assert set(POLICY_LOSSES) == {"regular", "dual_clip", "gspo", "cispo", "sapo"}


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


def test_rollout_log_probs_do_not_change_a_loss():
    # The engine/trainer correction lives in off_policy_correction (tests/test_off_policy.py), not in the losses.
    lp = torch.zeros(1, 2, dtype=T64)
    rollout = -torch.log(torch.tensor([[3.0, 0.5]], dtype=T64))
    kw = dict(log_probs=lp, old_log_probs=lp, advantages=torch.ones_like(lp), loss_mask=torch.ones_like(lp))
    with_rollout, _ = regular(**kw, config=cfg(), rollout_log_probs=rollout)
    torch.testing.assert_close(with_rollout, regular(**kw, config=cfg())[0])


def test_ppo_ratio_is_clamped_at_20_like_skyrl():
    # SkyRL 0.3 ppo_policy_loss: ratio = exp(clamp(logp - old, -20, 20)). logp - old = 25, A = -1, no clip hit
    # on the max side: loss = -min(-e^20, -1.2) = e^20 (not e^25); logp - old = -25, A = +1: loss = -min(e^-20, 0.8).
    lp = torch.tensor([[25.0, -25.0]], dtype=T64)
    adv = torch.tensor([[-1.0, 1.0]], dtype=T64)
    loss, _ = regular(log_probs=lp, old_log_probs=torch.zeros_like(lp), advantages=adv, loss_mask=torch.ones_like(lp),
                      config=cfg())
    torch.testing.assert_close(loss, torch.tensor([[math.exp(20.0), -math.exp(-20.0)]], dtype=T64))


def test_gspo_log_ratio_clamp_departs_from_skyrl():
    # One row, one token, logp - old = 15, A = -1 (the unclipped branch is the max): loss = r.
    # skyrl clamps to [-20, 20] -> r = e^15; SkyRL clamps to max 10 -> r = e^10. Pinned on purpose.
    lp = torch.tensor([[15.0]], dtype=T64)
    loss, _ = gspo(log_probs=lp, old_log_probs=torch.zeros_like(lp), advantages=-torch.ones_like(lp),
                   loss_mask=torch.ones_like(lp), config=cfg())
    assert loss.item() == pytest.approx(math.exp(15.0))
    assert loss.item() != pytest.approx(math.exp(10.0))


def test_sapo_soft_gate_values_and_gradients():
    # f(r) = sigmoid(tau (r - 1)) * 4 / tau, tau = 1 (A > 0) or 1.05 (A <= 0); loss = -f(r) A;
    # d loss / d logp = -A * 4 s (1 - s) * r with s = sigmoid(tau (r - 1)). Hand values (old = 0, r = exp(logp)):
    #   r=1   A=+1: s = 0.5,                  loss = -2,                   grad = -1
    #   r=2   A=+1: s = sigmoid(1) = 0.7310586, loss = -4 s = -2.9242343,   grad = -8 s (1-s) = -1.5728955
    #   r=0.5 A=-1: s = sigmoid(-0.525) = 0.3716840, loss = 4 s / 1.05 = 1.4159383, grad = 2 s (1-s) = 0.4670699
    #   r=3   A=+1 masked: excluded from the metric
    lp = logr([1.0, 2.0, 0.5, 3.0]).requires_grad_(True)
    adv = torch.tensor([[1.0, 1.0, -1.0, 1.0]], dtype=T64)
    mask = torch.tensor([[1, 1, 1, 0]], dtype=T64)
    loss, met = sapo(log_probs=lp, old_log_probs=torch.zeros_like(lp), advantages=adv, loss_mask=mask, config=cfg())
    torch.testing.assert_close(loss[:, :3], torch.tensor([[-2.0, -2.9242343, 1.4159383]], dtype=T64), atol=1e-6, rtol=0)
    # gate weight w = 4 s (1 - s): [1, 0.7864477, 0.9341398] -> mean 0.9068625
    assert met["sapo_gate_mean"] == pytest.approx(0.9068625, abs=1e-6)
    (loss * mask).sum().backward()
    expected_grad = torch.tensor([[-1.0, -1.5728955, 0.4670699, 0.0]], dtype=T64)
    torch.testing.assert_close(lp.grad, expected_grad, atol=1e-6, rtol=0)


def test_sapo_on_policy_gradient_is_plain_policy_gradient():
    # At r = 1 the gate's slope is 1 for any tau: d loss / d logp = -A (the REINFORCE gradient).
    lp = torch.tensor([[-0.3, -1.2, -2.0]], dtype=T64, requires_grad=True)
    adv = torch.tensor([[0.5, -2.0, 3.0]], dtype=T64)
    loss, _ = sapo(log_probs=lp, old_log_probs=lp.detach(), advantages=adv, loss_mask=torch.ones_like(adv),
                   config=cfg(sapo=SimpleNamespace(tau_pos=0.3, tau_neg=7.0)))
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, -adv)


def cov_case():
    """4 valid tokens + 1 masked; old = logp (r = 1, nothing PPO-clipped).

    A = [2, 0, -2, 0], logp = [-1, -3, -5, -3] -> mean(A) = 0, mean(logp) = -3 over the valid tokens,
    cov = (A - 0) * (logp + 3) = [4, 0, 4, 0]; the masked token (A = 9, logp = 0) is ignored.
    """
    lp = torch.tensor([[-1.0, -3.0, 0.0], [-5.0, -3.0, 0.0]], dtype=T64)
    adv = torch.tensor([[2.0, 0.0, 9.0], [-2.0, 0.0, 0.0]], dtype=T64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]], dtype=T64)
    return lp, adv, mask


def test_clip_cov_detaches_high_covariance_tokens():
    # lb = 1, ub = 5: candidates are the two tokens with cov 4. clip_ratio = 0.5 -> k = int(0.5 * 4) = 2 -> both are
    # detached (loss 0, gradient 0); the others keep -r A = [0, 0]. cov_clip_ratio = 2/4.
    lp, adv, mask = cov_case()
    lp.requires_grad_(True)
    config = cfg(clip_cov=SimpleNamespace(clip_ratio=0.5, clip_cov_lb=1.0, clip_cov_ub=5.0))
    loss, met = clip_cov(log_probs=lp, old_log_probs=lp.detach(), advantages=adv, loss_mask=mask, config=config)
    torch.testing.assert_close(loss * mask, torch.zeros_like(loss))
    assert met["cov_clip_ratio"] == pytest.approx(0.5)
    assert met["clip_ratio"] == 0.0
    (loss * mask).sum().backward()
    torch.testing.assert_close(lp.grad, torch.zeros_like(lp))


def test_clip_cov_without_candidates_is_regular_ppo():
    # ub = 3 < 4: no candidate; clip_ratio's minimum of one token does not apply -> the loss equals regular's.
    lp, adv, mask = cov_case()
    config = cfg(clip_cov=SimpleNamespace(clip_ratio=0.5, clip_cov_lb=1.0, clip_cov_ub=3.0))
    kw = dict(log_probs=lp + 0.1, old_log_probs=lp, advantages=adv, loss_mask=mask, config=config)
    loss, met = clip_cov(**kw)
    torch.testing.assert_close(loss, regular(**kw)[0])
    assert met["cov_clip_ratio"] == 0.0


def test_clip_cov_picks_k_of_the_candidates():
    # clip_ratio = 0.1 -> k = max(int(0.4), 1) = 1 of the two candidates (random); the loss of the other is -r A.
    lp, adv, mask = cov_case()
    torch.manual_seed(0)
    config = cfg(clip_cov=SimpleNamespace(clip_ratio=0.1, clip_cov_lb=1.0, clip_cov_ub=5.0))
    loss, met = clip_cov(log_probs=lp, old_log_probs=lp, advantages=adv, loss_mask=mask, config=config)
    assert met["cov_clip_ratio"] == pytest.approx(0.25)
    kept = sorted([loss[0, 0].item(), loss[1, 0].item()])
    assert kept == [-2.0, 0.0] or kept == [0.0, 2.0]


def test_kl_cov_penalises_top_covariance_tokens():
    # logp - old = [0.5, -0.2 | 0.3, 0.1] so r = exp(.); cov uses the current logp (shifted by these deltas):
    #   logp = [-0.5, -3.2, -4.7, -2.9], mean = -2.825; A - 0 = [2, 0, -2, 0]
    #   cov = [2 * 2.325, 0, -2 * -1.875, 0] = [4.65, 0, 3.75, 0]
    # kl_cov_frac = 0.25 -> k = max(1, int(1.0)) = 1 -> token (0,0) only: loss = -r A + 1 * |0.5|
    old, adv, mask = cov_case()
    delta = torch.tensor([[0.5, -0.2, 0.0], [0.3, 0.1, 0.0]], dtype=T64)
    lp = (old + delta).requires_grad_(True)
    config = cfg(kl_cov=SimpleNamespace(kl_cov_frac=0.25, ppo_kl_coef=1.0))
    loss, met = kl_cov(log_probs=lp, old_log_probs=old, advantages=adv, loss_mask=mask, config=config)
    r = torch.exp(delta)
    expected = -r * adv
    expected[0, 0] += 0.5
    torch.testing.assert_close(loss * mask, expected * mask)
    assert met["kl_cov_ratio"] == pytest.approx(0.25)
    # gradient: -A r everywhere, + sign(delta) * coef on the selected token: (0,0) -> -2 e^0.5 + 1
    (loss * mask).sum().backward()
    assert lp.grad[0, 0].item() == pytest.approx(-2 * math.exp(0.5) + 1.0)
    assert lp.grad[1, 0].item() == pytest.approx(2 * math.exp(0.3))


def test_kl_cov_with_no_valid_token_selects_nothing():
    lp = torch.zeros(1, 2, dtype=T64)
    loss, met = kl_cov(log_probs=lp, old_log_probs=lp, advantages=torch.ones_like(lp), loss_mask=torch.zeros_like(lp),
                       config=cfg())
    assert met["kl_cov_ratio"] == 0.0
    torch.testing.assert_close(loss, -torch.ones_like(lp))


def test_extreme_log_ratio_stays_finite():
    lp = torch.tensor([[100.0, -100.0]], dtype=T64)
    for name, fn in {**POLICY_LOSSES, "clip_cov": clip_cov, "kl_cov": kl_cov}.items():
        loss, met = fn(
            log_probs=lp,
            old_log_probs=torch.zeros_like(lp),
            advantages=torch.tensor([[-1.0, 1.0]], dtype=T64),
            loss_mask=torch.ones_like(lp),
            config=cfg(),
        )
        assert torch.isfinite(loss).all(), name
