"""The critic's clipped value loss (PPO) and its diagnostics."""

from __future__ import annotations

import torch

from skyrl_core.algorithms.reduction import masked_mean


def clipped_value_loss(*, values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       loss_mask: torch.Tensor, value_clip: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token clipped value loss, PPO style (Schulman et al. 2017; as in SkyRL's ``ppo_critic_loss``)::

        V_clip = V_old + clamp(V - V_old, -value_clip, value_clip)
        loss_t = 0.5 * max((V - R)^2, (V_clip - R)^2)

    ``value_clip <= 0`` disables clipping (``loss_t = 0.5 * (V - R)^2``). Returns the per-token losses (the
    caller applies the loss reduction) and ``clip_fraction``: the share of valid tokens where the clipped term is
    the larger one.
    """
    unclipped = (values - returns) ** 2
    if value_clip <= 0:
        return 0.5 * unclipped, {"clip_fraction": 0.0}
    clipped_values = old_values + (values - old_values).clamp(-value_clip, value_clip)
    clipped = (clipped_values - returns) ** 2
    fraction = masked_mean((clipped > unclipped).float(), loss_mask)
    return 0.5 * torch.maximum(unclipped, clipped), {"clip_fraction": float(fraction)}


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """``1 - Var(R - V) / Var(R)`` over the valid tokens: 1 is a perfect critic, 0 predicts the mean, negative is
    worse than the mean; NaN when the returns do not vary."""
    var_returns = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    residual = returns - values
    var_residual = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask)
    if float(var_returns) == 0.0:
        return float("nan")
    return float(1.0 - var_residual / var_returns)
