"""The critic's clipped value loss and explained variance against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from skyrl_core.algorithms.value_loss import clipped_value_loss, explained_variance


def test_clipped_value_loss_takes_the_larger_of_clipped_and_unclipped():
    values = torch.tensor([[1.0, 0.0, 2.0]])
    old = torch.tensor([[0.5, 0.0, 0.0]])
    returns = torch.tensor([[0.0, 1.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0]])
    losses, info = clipped_value_loss(values=values, old_values=old, returns=returns, loss_mask=mask, value_clip=0.2)
    # token 0: V=1, Vclip=0.5+0.2=0.7, R=0 -> max(1, 0.49)/2 = 0.5
    # token 1: V=0=V_old -> (0-1)^2/2 = 0.5, the clipped term equals it (not larger)
    # token 2: V=2, Vclip=0.2, R=2 -> max(0, 3.24)/2 = 1.62 (the clipped term is larger)
    torch.testing.assert_close(losses, torch.tensor([[0.5, 0.5, 1.62]]))
    assert info["clip_fraction"] == pytest.approx(1 / 3)
    plain, info = clipped_value_loss(values=values, old_values=old, returns=returns, loss_mask=mask, value_clip=0.0)
    torch.testing.assert_close(plain, torch.tensor([[0.5, 0.5, 0.0]]))
    assert info["clip_fraction"] == 0.0


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert explained_variance(returns.clone(), returns, mask) == pytest.approx(1.0)
    # predicting the mean (2) explains nothing; residual variance = variance of the returns
    assert explained_variance(torch.full_like(returns, 2.0), returns, mask) == pytest.approx(0.0)
    # V = [1, 1, 1]: residual [0, 1, 2] has variance 2/3, returns too -> 0
    assert explained_variance(torch.ones_like(returns), returns, mask) == pytest.approx(0.0)
    assert math.isnan(explained_variance(returns, torch.ones_like(returns), mask))
