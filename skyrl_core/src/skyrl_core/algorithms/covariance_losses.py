"""Covariance-based policy losses: Clip-Cov and KL-Cov.

Source: Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
(arXiv:2505.22617). Policy entropy falls where the covariance between a token's log-probability and its
advantage is large; both losses act only on a small set of such high-covariance tokens. Same call convention
and ``config`` handling as :mod:`skyrl_core.algorithms.losses` (``config.clip_cov.*``, ``config.kl_cov.*``,
``eps_clip_low``/``eps_clip_high``). Semantics follow SkyRL 0.3's ``compute_policy_loss_clip_cov`` /
``compute_policy_loss_kl_cov``.

The covariance of token t is ``cov_t = (A_t - mean(A)) * (logp_t - mean(logp))``, means over the mask-1 tokens
of the tensors passed in (one micro-batch), as SkyRL and verl compute it. The token selection therefore depends
on how a mini-batch is split into micro-batches; everything else in these losses is per token.
"""

from __future__ import annotations

from typing import Any

import torch

from .losses import _cfg, _frac, _ppo_clip, importance_ratio
from .reduction import masked_mean

__all__ = ["clip_cov", "kl_cov", "token_covariance"]


def token_covariance(log_probs: torch.Tensor, advantages: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """``cov_t = (A_t - mean_valid(A)) * (logp_t - mean_valid(logp))`` (detached; any value on mask-0 tokens)."""
    logp = log_probs.detach()
    adv = advantages.detach().to(logp.dtype)
    return (adv - masked_mean(adv, loss_mask)) * (logp - masked_mean(logp, loss_mask))


def clip_cov(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clip-Cov: the PPO clipped surrogate, with the gradient of a few high-covariance tokens removed.

    ``pg_t = -min(r A, clip(r, 1 - eps_clip_low, 1 + eps_clip_high) A)`` as in PPO. Candidates are the valid
    tokens that PPO did not clip and whose covariance lies strictly inside ``(clip_cov.clip_cov_lb,
    clip_cov.clip_cov_ub)``; ``k = max(int(clip_cov.clip_ratio * n_valid), 1)`` of them (all if fewer),
    chosen uniformly at random, get ``loss_t = 0`` (no gradient). Other tokens keep ``pg_t``.
    Deviation: the ratio is clamped in log space to [-20, 20] as in the other losses (SkyRL exponentiates the
    raw log-ratio here). Metrics: ``clip_ratio`` (PPO-clipped fraction of valid tokens), ``cov_clip_ratio``
    (fraction of valid tokens detached by the covariance rule), ``ppo_kl``.
    """
    sub = _cfg(config, "clip_cov", None)
    fraction = float(_cfg(sub, "clip_ratio", 0.0002))
    lower = float(_cfg(sub, "clip_cov_lb", 1.0))
    upper = float(_cfg(sub, "clip_cov_ub", 5.0))
    valid = loss_mask > 0
    ratio = importance_ratio(log_probs - old_log_probs)
    pg, clipped = _ppo_clip(ratio, advantages, config)
    cov = token_covariance(log_probs, advantages, loss_mask)
    candidates = torch.nonzero(valid & ~clipped & (cov > lower) & (cov < upper))
    keep = torch.ones_like(pg)
    if len(candidates) > 0:
        count = min(max(int(fraction * int(valid.sum())), 1), len(candidates))
        chosen = candidates[torch.randperm(len(candidates), device=candidates.device)[:count]]
        keep[chosen[:, 0], chosen[:, 1]] = 0.0
    loss = pg * keep
    metrics = {
        "clip_ratio": _frac(clipped, loss_mask),
        "cov_clip_ratio": _frac(keep == 0, loss_mask),
        "ppo_kl": float(masked_mean((old_log_probs - log_probs).detach(), loss_mask).item()),
    }
    return loss, metrics


def kl_cov(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL-Cov: the unclipped policy gradient, plus a KL penalty on the highest-covariance tokens.

    ``loss_t = -r_t A_t`` on every token (no ratio clipping); on the ``k = max(1, int(kl_cov.kl_cov_frac *
    n_valid))`` valid tokens with the largest covariance, ``loss_t = -r_t A_t + kl_cov.ppo_kl_coef *
    |logp_t - logp_old_t|``. No valid token: no selection.
    Deviation: the ratio is clamped in log space to [-20, 20] (SkyRL exponentiates the raw log-ratio).
    Metrics: ``kl_cov_ratio`` (fraction of valid tokens penalised), ``ppo_kl``.
    """
    sub = _cfg(config, "kl_cov", None)
    fraction = float(_cfg(sub, "kl_cov_frac", 0.2))
    coef = float(_cfg(sub, "ppo_kl_coef", 1.0))
    valid = loss_mask > 0
    log_ratio = log_probs - old_log_probs
    loss = -importance_ratio(log_ratio) * advantages
    selected = torch.zeros_like(valid)
    n_valid = int(valid.sum())
    if n_valid > 0:
        valid_positions = torch.nonzero(valid)
        cov = token_covariance(log_probs, advantages, loss_mask)[valid]
        top = torch.topk(cov, max(1, int(n_valid * fraction))).indices
        picked = valid_positions[top]
        selected[picked[:, 0], picked[:, 1]] = True
    loss = torch.where(selected, loss + coef * log_ratio.abs(), loss)
    metrics = {
        "kl_cov_ratio": _frac(selected, loss_mask),
        "ppo_kl": float(masked_mean((old_log_probs - log_probs).detach(), loss_mask).item()),
    }
    return loss, metrics
