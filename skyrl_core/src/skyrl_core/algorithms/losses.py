"""Policy losses.

Every loss is called with keyword arguments only::

    token_losses, metrics = fn(log_probs=..., old_log_probs=..., advantages=..., loss_mask=..., config=cfg,
                               rollout_log_probs=None)

and returns the **per-token** loss ``[batch, T]`` (not reduced: the caller applies
:func:`~skyrl_core.algorithms.reduction.reduce_loss`) plus a dict of python-float metrics computed over the
mask-1 tokens of this micro-batch.

``config`` attributes (missing ones take the default): ``eps_clip_low`` (0.2), ``eps_clip_high`` (0.2),
``clip_ratio_c`` (3.0), ``cispo.cispo_eps_clip_low`` (0.0), ``cispo.cispo_eps_clip_high`` (5.0),
``sapo.tau_pos`` (1.0), ``sapo.tau_neg`` (1.05). ``rollout_log_probs`` (the inference engine's log-probs) is
accepted and unused here: the correction for the engine/trainer gap is one separate step for every loss, see
:func:`skyrl_core.algorithms.off_policy.off_policy_correction`.

The importance ratio is ``r = exp(clamp(logp - logp_old, -20, 20))`` everywhere, as SkyRL 0.3 does for PPO,
CISPO and SAPO (GSPO differs, see :func:`gspo`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from skyrl_core.errors import UserError

from .reduction import masked_mean

__all__ = ["POLICY_LOSSES", "cispo", "dual_clip", "gspo", "importance_ratio", "regular", "sapo"]

_LOG_RATIO_CLAMP = 20.0


def _cfg(config: Any, name: str, default: Any) -> Any:
    return default if config is None else getattr(config, name, default)


def importance_ratio(log_ratio: torch.Tensor) -> torch.Tensor:
    """``exp(clamp(log_ratio, -20, 20))``."""
    return torch.exp(torch.clamp(log_ratio, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))


def _frac(cond: torch.Tensor, mask: torch.Tensor) -> float:
    return float(masked_mean(cond.to(torch.float32), mask.to(torch.float32)).item())


def _ppo_clip(ratio: torch.Tensor, advantages: torch.Tensor, config: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)`` and the "clipped branch active" indicator."""
    eps_low = float(_cfg(config, "eps_clip_low", 0.2))
    eps_high = float(_cfg(config, "eps_clip_high", 0.2))
    surr1 = ratio * advantages
    surr2 = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages
    return -torch.minimum(surr1, surr2), surr2 < surr1


def regular(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped surrogate (Schulman et al. 2017) with an asymmetric clip-higher (Yu et al. 2025).

    ``loss_t = -min(r_t A_t, clip(r_t, 1 - eps_clip_low, 1 + eps_clip_high) A_t)``.
    Metrics: ``clip_ratio`` = fraction of valid tokens where the clipped term is strictly smaller (i.e. the
    active branch, gradient 0), ``ppo_kl`` = masked mean of ``logp_old - logp``. (SkyRL ``ppo_policy_loss``.)
    """
    ratio = importance_ratio(log_probs - old_log_probs)
    loss, clipped = _ppo_clip(ratio, advantages, config)
    metrics = {
        "clip_ratio": _frac(clipped, loss_mask),
        "ppo_kl": float(masked_mean((old_log_probs - log_probs).detach(), loss_mask).item()),
    }
    return loss, metrics


def dual_clip(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Dual-clip PPO (Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep RL").

    ``pg_t = -min(r A, clip(r) A)`` as in :func:`regular`; where ``A_t < 0`` the loss is further capped:
    ``loss_t = min(pg_t, -c A_t)`` with ``c = clip_ratio_c`` (> 1), bounding the loss when ``r`` is huge.
    Metrics: those of :func:`regular` plus ``dual_clip_ratio`` = fraction of valid tokens where the cap is
    active (``A < 0`` and ``-c A < pg``).
    """
    c = float(_cfg(config, "clip_ratio_c", 3.0))
    if c <= 1.0:
        raise UserError(f"dual_clip needs clip_ratio_c > 1, got {c}")
    ratio = importance_ratio(log_probs - old_log_probs)
    pg, clipped = _ppo_clip(ratio, advantages, config)
    cap = -c * advantages
    negative = advantages < 0
    loss = torch.where(negative, torch.minimum(pg, cap), pg)
    metrics = {
        "clip_ratio": _frac(clipped, loss_mask),
        "ppo_kl": float(masked_mean((old_log_probs - log_probs).detach(), loss_mask).item()),
        "dual_clip_ratio": _frac(negative & (cap < pg), loss_mask),
    }
    return loss, metrics


def gspo(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GSPO-token (Zheng et al. 2025, "Group Sequence Policy Optimization"; SkyRL ``gspo_policy_loss``).

    Sequence log-ratio ``s_i = masked_mean_t(logp_it - logp_old_it)`` (length-normalised); per-token
    log-ratio ``sg(s_i) + logp_it - sg(logp_it)`` (value = ``s_i`` on every token of the row, gradient that
    of ``logp_it``); ``r = exp(clamp(., -20, 20))``, then the PPO clip of :func:`regular`.
    Deviation on purpose: SkyRL clamps this log-ratio to at most 10 (no lower bound); we clamp to [-20, 20]
    like the other losses, so a sequence log-ratio above 10 gives ``exp(s)`` here and ``exp(10)`` there. The paper's
    eps are ~1e-3 scale; set ``eps_clip_low/high`` accordingly.
    Metrics: ``clip_ratio``, ``ppo_kl`` (as :func:`regular`).
    """
    seq_log_ratio = masked_mean(log_probs - old_log_probs, loss_mask, dim=-1).unsqueeze(-1)
    token_log_ratio = seq_log_ratio.detach() + log_probs - log_probs.detach()
    ratio = importance_ratio(token_log_ratio)
    loss, clipped = _ppo_clip(ratio, advantages, config)
    metrics = {
        "clip_ratio": _frac(clipped, loss_mask),
        "ppo_kl": float(masked_mean((old_log_probs - log_probs).detach(), loss_mask).item()),
    }
    return loss, metrics


def cispo(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """CISPO (MiniMax-M1 report, 2025; SkyRL ``compute_policy_loss_cispo``).

    ``loss_t = -A_t * sg(clip(r_t, 1 - cispo_eps_clip_low, 1 + cispo_eps_clip_high)) * logp_t``: the
    importance weight is clipped and detached, so every token keeps a REINFORCE-style gradient through
    ``logp`` only. eps come from ``config.cispo`` (defaults 0.0 / 5.0).
    Metrics: ``clip_ratio`` = fraction of valid tokens with ``r`` outside the clip interval.
    """
    sub = _cfg(config, "cispo", None)
    eps_low = float(_cfg(sub, "cispo_eps_clip_low", 0.0))
    eps_high = float(_cfg(sub, "cispo_eps_clip_high", 5.0))
    ratio = importance_ratio(log_probs - old_log_probs).detach()
    lo, hi = 1.0 - eps_low, 1.0 + eps_high
    weight = torch.clamp(ratio, lo, hi)
    loss = -advantages * weight * log_probs
    metrics = {"clip_ratio": _frac((ratio < lo) | (ratio > hi), loss_mask)}
    return loss, metrics


def sapo(
    *,
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    config: Any = None,
    rollout_log_probs: torch.Tensor | None = None,
    **kw: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAPO, Soft Adaptive Policy Optimization (Gao et al. 2025, arXiv:2511.20347; SkyRL ``sapo_policy_loss``).

    A smooth, temperature-controlled gate replaces PPO's hard clip:
    ``loss_t = -f(r_t) A_t`` with ``f(r) = sigmoid(tau (r - 1)) * 4 / tau``, where ``tau = sapo.tau_pos`` when
    ``A_t > 0`` and ``sapo.tau_neg`` otherwise. The gradient is ``-A_t * w(r_t) * r_t * grad logp_t`` with
    ``w(r) = 4 sigmoid(tau (r - 1)) (1 - sigmoid(tau (r - 1)))``: ``w(1) = 1`` (on-policy tokens get the plain
    policy gradient) and ``w`` decays smoothly as ``r`` leaves 1, faster for larger ``tau`` (so ``tau_neg >
    tau_pos`` damps negative updates more). The paper recommends ``sequence_mean`` reduction.
    Metrics: ``sapo_gate_mean`` = masked mean of ``w(r)`` (1 when on-policy), ``ppo_kl``.
    """
    sub = _cfg(config, "sapo", None)
    tau = torch.where(
        advantages > 0,
        torch.as_tensor(float(_cfg(sub, "tau_pos", 1.0)), dtype=advantages.dtype, device=advantages.device),
        torch.as_tensor(float(_cfg(sub, "tau_neg", 1.05)), dtype=advantages.dtype, device=advantages.device),
    )
    ratio = importance_ratio(log_probs - old_log_probs)
    gate = torch.sigmoid(tau * (ratio - 1.0))
    loss = -gate * (4.0 / tau) * advantages
    weight = (4.0 * gate * (1.0 - gate)).detach()
    metrics = {
        "sapo_gate_mean": float(masked_mean(weight, loss_mask).item()),
        "ppo_kl": float(masked_mean((old_log_probs - log_probs).detach(), loss_mask).item()),
    }
    return loss, metrics


POLICY_LOSSES: dict[str, Callable[..., tuple[torch.Tensor, dict[str, float]]]] = {
    "regular": regular,
    "dual_clip": dual_clip,
    "gspo": gspo,
    "cispo": cispo,
    "sapo": sapo,
}
