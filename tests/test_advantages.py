"""Advantage estimators against hand-computed values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from skyrl_core.algorithms.advantages import (
    ADVANTAGE_ESTIMATORS,
    compute_gae,
    discounted_returns,
    gae,
    grpo,
    reinforce_plus_plus,
    reinforce_plus_plus_baseline,
    rloo,
)
from skyrl_core.algorithms.reduction import reduce_loss
from skyrl_core.errors import UserError

T64 = torch.float64


def cfg(**kw):
    base = dict(grpo_norm_by_std=True, gamma=1.0, lambd=1.0)
    base.update(kw)
    return SimpleNamespace(**base)


def outcome_rows(scores, T=3):
    """One row per score, reward on the last token, all tokens valid."""
    r = torch.zeros(len(scores), T, dtype=T64)
    r[:, -1] = torch.tensor(scores, dtype=T64)
    return r, torch.ones_like(r)


def test_registry_names():
    assert set(ADVANTAGE_ESTIMATORS) == {"grpo", "gae", "rloo", "reinforce++", "reinforce++_baseline"}
    assert ADVANTAGE_ESTIMATORS["reinforce++_baseline"] is reinforce_plus_plus_baseline
    assert ADVANTAGE_ESTIMATORS["reinforce++"] is reinforce_plus_plus


# ---------------------------------------------------------------- GRPO


def test_grpo_two_groups_interleaved():
    # index [0,1,0,0,1,0]; scores [1,1,0,1,1,0]
    # group 0 = rows 0,2,3,5 -> scores [1,0,1,0]: mean 0.5, unbiased var = 4*0.25/3 = 1/3, std = 1/sqrt(3)
    #   A = +-0.5 / (1/sqrt(3) + 1e-6) ~= +-0.5*sqrt(3) = +-0.8660254
    # group 1 = rows 1,4 -> scores [1,1]: mean 1, std 0 -> A = 0 / 1e-6 = 0
    r, m = outcome_rows([1, 1, 0, 1, 1, 0])
    adv, ret = grpo(token_level_rewards=r, response_mask=m, index=[0, 1, 0, 0, 1, 0], config=cfg())
    a = 0.5 * math.sqrt(3)
    expected_row = torch.tensor([a, 0.0, -a, a, 0.0, -a], dtype=T64)
    torch.testing.assert_close(adv, expected_row[:, None].expand(6, 3), atol=1e-5, rtol=0)
    assert torch.equal(adv, ret)


def test_grpo_no_std_and_index_types():
    # same scores, grpo_norm_by_std=False -> A = s - mean: group0 +-0.5, group1 0
    r, m = outcome_rows([1, 1, 0, 1, 1, 0])
    expected = torch.tensor([0.5, 0.0, -0.5, 0.5, 0.0, -0.5], dtype=T64)[:, None].expand(6, 3)
    for index in (
        [0, 1, 0, 0, 1, 0],
        torch.tensor([0, 1, 0, 0, 1, 0]),
        np.array([0, 1, 0, 0, 1, 0]),
        ["p", "q", "p", "p", "q", "p"],
    ):
        adv, _ = grpo(token_level_rewards=r, response_mask=m, index=index, config=cfg(grpo_norm_by_std=False))
        torch.testing.assert_close(adv, expected, atol=1e-12, rtol=0)


def test_grpo_singleton_group_and_mask():
    # singleton groups: mean 0, std 1 -> A = s / (1 + 1e-6) ~= s: scores 2 and 3
    # row 0 masks token 2 (so A is 0 there) but the reward on it still counts in the row's score (2 + 9 = 11), as
    # in SkyRL and veRL: a response whose loss is masked (e.g. cut by the length limit) keeps its reward.
    r = torch.tensor([[0.0, 2.0, 9.0], [0.0, 3.0, 0.0]], dtype=T64)
    m = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    adv, _ = grpo(token_level_rewards=r, response_mask=m, index=["a", "b"], config=cfg())
    expected = torch.tensor([[11.0, 11.0, 0.0], [3.0, 3.0, 3.0]], dtype=T64) / (1 + 1e-6)
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)


def test_index_length_mismatch():
    r, m = outcome_rows([1, 0])
    with pytest.raises(UserError):
        grpo(token_level_rewards=r, response_mask=m, index=[0], config=cfg())


def test_grpo_equal_rewards_that_float32_cannot_average_exactly_give_exactly_zero():
    # 0.1 is not a binary fraction: the float32 mean of eight 0.1s is off by an ulp, and (s - mean) / (std + 1e-6)
    # with std ~ 1e-8 would be ~1e-2; a group with all-equal scores carries no signal and gets exactly 0
    r = torch.full((8, 1), 0.1, dtype=torch.float32)
    adv, _ = grpo(token_level_rewards=r, response_mask=torch.ones(8, 1), index=[0] * 8, config=cfg())
    assert torch.equal(adv, torch.zeros_like(adv))


def test_grpo_all_equal_rewards_give_zero():
    # every group has equal scores: s - mean = 0 in both modes (0 / (0 + 1e-6) = 0), no NaN
    r, m = outcome_rows([1, 1, 0, 0])
    for norm in (True, False):
        adv, _ = grpo(token_level_rewards=r, response_mask=m, index=[0, 0, 1, 1], config=cfg(grpo_norm_by_std=norm))
        assert torch.equal(adv, torch.zeros_like(adv))


def test_dr_grpo_gradient_does_not_depend_on_length():
    # Dr. GRPO = grpo_norm_by_std=false + seq_mean_token_sum_norm. Rows of 1 and 3 valid tokens, group scores [1, 0]
    # -> A = [+0.5, -0.5]. Per-token loss -A * logp reduced with max_seq_len = 4 over N_seq = 2 rows:
    # d loss / d logp_t = -A / (4 * 2) = -/+0.0625 on every valid token of both rows, whatever the row's length
    # (sequence_mean would give -A / (len * 2): -0.25 for the short row, +0.0833 for the long one).
    r = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=T64)
    m = torch.tensor([[1, 0, 0], [1, 1, 1]], dtype=T64)
    adv, _ = grpo(token_level_rewards=r, response_mask=m, index=[0, 0], config=cfg(grpo_norm_by_std=False))
    logp = torch.full((2, 3), -1.0, dtype=T64, requires_grad=True)
    loss = reduce_loss(-adv * logp, m, reduction="seq_mean_token_sum_norm", global_token_count=4,
                       global_seq_count=2, max_seq_len=4)
    loss.backward()
    expected = torch.tensor([[-0.0625, 0.0, 0.0], [0.0625, 0.0625, 0.0625]], dtype=T64)
    torch.testing.assert_close(logp.grad, expected)


# ---------------------------------------------------------------- RLOO


def test_rloo():
    # group 0 [1,0,1,0]: A = s - mean(others): 1 - 1/3 = 2/3, 0 - 2/3 = -2/3
    #   (= (s - 0.5) * 4/3)
    # group 1 [3,1,2]: 3 - (1+2)/2 = 1.5, 1 - (3+2)/2 = -1.5, 2 - (3+1)/2 = 0
    # group 2 [5] alone -> 0 (SkyRL 0.3 compute_rloo_outcome_advantage sets a lone sample to 0 too)
    scores = [1, 0, 1, 0, 3, 1, 2, 5]
    index = [0, 0, 0, 0, 1, 1, 1, 2]
    r, m = outcome_rows(scores, T=2)
    m[0, 0] = 0  # row 0's first token is masked: advantage 0 there (its reward on token 1 still counts)
    adv, ret = rloo(token_level_rewards=r, response_mask=m, index=index, config=cfg())
    expected = torch.tensor([2 / 3, -2 / 3, 2 / 3, -2 / 3, 1.5, -1.5, 0.0, 0.0], dtype=T64)
    expected = expected[:, None].expand(8, 2).clone()
    expected[0, 0] = 0.0  # masked
    torch.testing.assert_close(adv, expected, atol=1e-12, rtol=0)
    assert torch.equal(adv, ret)


# ---------------------------------------------------------------- REINFORCE++


def test_reinforce_pp_gamma_half():
    # rewards [1,0,2,5], mask [1,1,1,0], gamma 0.5 (the 5 on the padding token is ignored):
    #   G2 = 2, G1 = 0 + 0.5*2 = 1, G0 = 1 + 0.5*1 = 1.5, G3 = 0
    # whitening over the 3 valid tokens [1.5,1,2]: mean 1.5, unbiased var = (0+0.25+0.25)/2 = 0.25, std 0.5
    #   -> [0, -1, 1], padding 0
    r = torch.tensor([[1.0, 0.0, 2.0, 5.0]], dtype=T64)
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=T64)
    adv, ret = reinforce_plus_plus(token_level_rewards=r, response_mask=m, index=[0], config=cfg(gamma=0.5))
    torch.testing.assert_close(ret, torch.tensor([[1.5, 1.0, 2.0, 0.0]], dtype=T64))
    torch.testing.assert_close(adv, torch.tensor([[0.0, -1.0, 1.0, 0.0]], dtype=T64), atol=1e-6, rtol=0)


def test_reinforce_pp_eos_mid_row_matches_skyrl():
    # Single-turn row that ends (EOS) at token 1 of 4: rewards [0, 1, 0, 0], mask [1, 1, 0, 0], gamma 0.9.
    # SkyRL's recursion (running = r_t + gamma * running; reset at mask-0) on the valid tokens: G1 = 1, G0 = 0.9.
    # Ours is the same; padding 0. Whitening over [0.9, 1]: mean 0.95, unbiased var 0.005 -> [-0.7071068, 0.7071068]
    r = torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=T64)
    m = torch.tensor([[1, 1, 0, 0]], dtype=T64)
    adv, ret = reinforce_plus_plus(token_level_rewards=r, response_mask=m, index=[0], config=cfg(gamma=0.9))
    torch.testing.assert_close(ret, torch.tensor([[0.9, 1.0, 0.0, 0.0]], dtype=T64))
    s = 0.05 / math.sqrt(0.005 + 1e-8)
    torch.testing.assert_close(adv, torch.tensor([[-s, s, 0.0, 0.0]], dtype=T64))


def test_reinforce_pp_multi_turn_departs_from_skyrl():
    # Two turns separated by an observation token: rewards [0, 0, 1], mask [1, 0, 1], gamma 1.
    # skyrl skips the observation: G = [1, 0, 1] (the earlier turn sees the final reward).
    # SkyRL resets at the mask-0 token: its G0 would be 0 (the earlier turn never sees it). Pinned on purpose.
    r = torch.tensor([[0.0, 0.0, 1.0]], dtype=T64)
    m = torch.tensor([[1, 0, 1]], dtype=T64)
    torch.testing.assert_close(discounted_returns(r, m, 1.0), torch.tensor([[1.0, 0.0, 1.0]], dtype=T64))


def test_discounted_returns_rows_independent_and_mid_mask():
    # row 0: rewards [1,7,2], mask [1,0,1], gamma 0.5: G2 = 2; token 1 skipped (G1 = 0, reward 7 ignored);
    #        G0 = 1 + 0.5*G2 = 2
    # row 1: rewards [0,0,3], all valid: G = [0.75, 1.5, 3] -- nothing leaks from row 0
    r = torch.tensor([[1.0, 7.0, 2.0], [0.0, 0.0, 3.0]], dtype=T64)
    m = torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=T64)
    g = discounted_returns(r, m, 0.5)
    torch.testing.assert_close(g, torch.tensor([[2.0, 0.0, 2.0], [0.75, 1.5, 3.0]], dtype=T64))


# ---------------------------------------------------------------- GAE


def test_gae_gamma1_lambda1_is_monte_carlo():
    # gamma = lambd = 1: A_t = sum_{k>=t} r_k - V_t.  rewards [0,0,1], V [0.5,0.2,0.4]
    #   A2 = 1 - 0.4 = 0.6, A1 = 1 - 0.2 = 0.8, A0 = 1 - 0.5 = 0.5; returns = A + V = [1,1,1]
    r = torch.tensor([[0.0, 0.0, 1.0]], dtype=T64)
    v = torch.tensor([[0.5, 0.2, 0.4]], dtype=T64)
    m = torch.ones_like(r)
    a, ret = compute_gae(r, v, m, 1.0, 1.0)
    torch.testing.assert_close(a, torch.tensor([[0.5, 0.8, 0.6]], dtype=T64))
    torch.testing.assert_close(ret, torch.tensor([[1.0, 1.0, 1.0]], dtype=T64))


def test_gae_gamma09_lambda08():
    # rewards [0,0,1,9], V [0.5,0.2,0.4,7], mask [1,1,1,0] (padding values/rewards ignored), gamma .9, lambd .8
    #   d2 = 1 + 0.9*0 - 0.4 = 0.6                   A2 = 0.6
    #   d1 = 0 + 0.9*0.4 - 0.2 = 0.16                A1 = 0.16 + 0.72*0.6 = 0.592
    #   d0 = 0 + 0.9*0.2 - 0.5 = -0.32               A0 = -0.32 + 0.72*0.592 = 0.10624
    #   returns = A + V = [0.60624, 0.792, 1.0, 0]
    r = torch.tensor([[0.0, 0.0, 1.0, 9.0]], dtype=T64)
    v = torch.tensor([[0.5, 0.2, 0.4, 7.0]], dtype=T64)
    m = torch.tensor([[1, 1, 1, 0]], dtype=T64)
    a, ret = compute_gae(r, v, m, 0.9, 0.8)
    torch.testing.assert_close(a, torch.tensor([[0.10624, 0.592, 0.6, 0.0]], dtype=T64))
    torch.testing.assert_close(ret, torch.tensor([[0.60624, 0.792, 1.0, 0.0]], dtype=T64))


def test_gae_trailing_padding_matches_skyrl():
    # SkyRL recursion over every position (no mask) with zero reward and value on the padding:
    # rewards [0,0,1,0], V [0.5,0.2,0.4,0], mask [1,1,1,0], gamma .9, lambd .8:
    #   t3: delta 0, A 0; t2: 1 + 0.9*0 - 0.4 = 0.6; t1: 0.592; t0: 0.10624 (as test_gae_gamma09_lambda08)
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0]], dtype=T64)
    v = torch.tensor([[0.5, 0.2, 0.4, 0.0]], dtype=T64)
    m = torch.tensor([[1, 1, 1, 0]], dtype=T64)
    a, _ = compute_gae(r, v, m, 0.9, 0.8)
    torch.testing.assert_close(a, torch.tensor([[0.10624, 0.592, 0.6, 0.0]], dtype=T64))


def test_gae_skips_mid_sequence_masked_token():
    # rewards [0,5,1], V [0.5,9,0.4], mask [1,0,1], gamma .9, lambd .8: token 1 skipped
    #   A2 = 1 - 0.4 = 0.6; A0 = 0 + 0.9*0.4 - 0.5 + 0.72*0.6 = 0.36 - 0.5 + 0.432 = 0.292
    # Departure pinned on purpose: SkyRL counts the observation token as a step (it ignores the mask):
    #   A1 = 5 + 0.9*0.4 - 9 + 0.72*0.6 = -3.208, A0 = 0 + 0.9*9 - 0.5 + 0.72*(-3.208) = 5.29024 (not 0.292)
    r = torch.tensor([[0.0, 5.0, 1.0]], dtype=T64)
    v = torch.tensor([[0.5, 9.0, 0.4]], dtype=T64)
    m = torch.tensor([[1, 0, 1]], dtype=T64)
    a, _ = compute_gae(r, v, m, 0.9, 0.8)
    torch.testing.assert_close(a, torch.tensor([[0.292, 0.0, 0.6]], dtype=T64))


# ---------------------------------------------------------------- REINFORCE++ baseline


def test_reinforce_pp_baseline():
    # groups: 0 -> scores [2, 0] (centred [1, -1]); 1 -> [3] alone (baseline 0 -> 3); 2 -> [4, 4] (all equal -> 0)
    # one valid token per row (mask [1, 0]); whitening over the 5 valid values [1, -1, 3, 0, 0]:
    #   mean 0.6, deviations [0.4, -1.6, 2.4, -0.6, -0.6], squares sum 9.2, unbiased var 2.3
    r = torch.tensor([[2.0, 0.0], [0.0, 0.0], [3.0, 0.0], [4.0, 0.0], [4.0, 0.0]], dtype=T64)
    m = torch.tensor([[1, 0]] * 5, dtype=T64)
    adv, ret = reinforce_plus_plus_baseline(token_level_rewards=r, response_mask=m, index=[0, 0, 1, 2, 2],
                                            config=cfg())
    std = math.sqrt(2.3 + 1e-8)
    expected = torch.tensor([[0.4, 0.0], [-1.6, 0.0], [2.4, 0.0], [-0.6, 0.0], [-0.6, 0.0]], dtype=T64) / std
    torch.testing.assert_close(adv, expected)
    assert torch.equal(adv, ret)


def test_reinforce_pp_baseline_single_valid_token_is_zero():
    # one valid token in the batch: variance undefined -> whitened value 0, no NaN
    r = torch.tensor([[1.0, 0.0]], dtype=T64)
    adv, _ = reinforce_plus_plus_baseline(token_level_rewards=r, response_mask=torch.tensor([[1.0, 0.0]]), index=[0])
    assert torch.equal(adv, torch.zeros_like(adv))


def test_gae_estimator_whitens_and_needs_values():
    r = torch.tensor([[0.0, 0.0, 1.0, 9.0], [0.0, 1.0, 0.0, 0.0]], dtype=T64)
    v = torch.tensor([[0.5, 0.2, 0.4, 7.0], [0.1, 0.3, 0.2, 0.6]], dtype=T64)
    m = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=T64)
    c = cfg(gamma=0.9, lambd=0.8)
    adv, ret = gae(token_level_rewards=r, response_mask=m, index=[0, 1], values=v, config=c)
    # returns are the un-whitened A + V, row 0 computed by hand in test_gae_gamma09_lambda08
    torch.testing.assert_close(ret[0], torch.tensor([0.60624, 0.792, 1.0, 0.0], dtype=T64))
    valid = adv[m.bool()]
    assert abs(valid.mean().item()) < 1e-9
    assert abs(valid.std().item() - 1.0) < 1e-6  # unbiased std ~ 1
    assert adv[0, 3].item() == 0.0
    with pytest.raises(UserError, match="needs a critic: set trainer.critic.model.path"):
        gae(token_level_rewards=r, response_mask=m, index=[0, 1], config=c)
