"""Off-policy correction for the gap between the inference engine's and the trainer's log-probs.

The engine samples from ``mu`` (its own kernels, precision, sometimes stale weights) while the loss assumes the
trainer's ``pi_old``. With ``rho_t = exp(logp_old_t - logp_rollout_t)`` (log-ratio clamped to [-20, 20]) the
section ``trainer.algorithm.off_policy_correction`` (SkyRL's key names and meanings) turns on, independently:

* **Truncated importance sampling** (Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You
  Off-Policy RL Training", https://fengyao.notion.site/off-policy-rl; SkyRL ``use_tis`` / ``tis_ratio_type``):
  ``tis_ratio_type=token``: ``w_t = min(rho_t, token_tis_ratio_clip_high)``;
  ``tis_ratio_type=sequence``: ``w_t = min(exp(sum_s m_s log rho_s), sequence_tis_ratio_clip_high)`` for every
  token of the row (the product of the row's ratios, capped).
* **Sequence masks** (verl ``rollout_corr`` rejection sampling; SkyRL ``sequence_mask_metric``): drop a whole
  row when ``geometric``: ``exp(mean_s log rho_s)`` is outside ``[geo_mask_low, geo_mask_high]``, or
  ``product``: ``exp(sum_s log rho_s)`` is outside ``[product_mask_low, product_mask_high]``.
* **Outlier rows** (SkyRL ``outlier_token_is_threshold_{low,high}``): drop a row having any valid token with
  ``rho_t`` below low / above high.
* **Token masks** (IcePop, Ling Team 2025; SkyRL ``token_mask_is_threshold_{low,high}``): drop the tokens whose
  ``rho_t`` is below low / above high.

Order (as SkyRL): outlier rows, token masks, TIS weights and sequence masks; TIS and the sequence masks use the
tokens left by the first two. The worker multiplies the per-token policy loss by ``token_weights`` and the policy
loss mask by ``token_mask``. Deviation on purpose: SkyRL applies the outlier and token masks only when
``tis_ratio_type`` or ``sequence_mask_metric`` is also set; here every key that is set takes effect.
"""

from __future__ import annotations

from typing import Any

import torch

from skyrl_core.algorithms.names import SEQUENCE_MASK_METRICS, TIS_RATIO_TYPES  # noqa: F401 - re-exported
from skyrl_core.errors import UserError

from .reduction import masked_mean

__all__ = [
    "SEQUENCE_MASK_METRICS",
    "TIS_RATIO_TYPES",
    "off_policy_correction",
    "off_policy_correction_enabled",
]


_LOG_RATIO_CLAMP = 20.0
_SECTION = "trainer.algorithm.off_policy_correction"


def _safe_exp(log_ratio: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.clamp(log_ratio, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP))


def off_policy_correction_enabled(config: Any) -> bool:
    """True when any key of the ``off_policy_correction`` section asks for a correction."""
    return (
        config.tis_ratio_type is not None
        or config.sequence_mask_metric is not None
        or config.outlier_token_is_threshold_low is not None
        or config.outlier_token_is_threshold_high is not None
        or config.token_mask_is_threshold_low is not None
        or config.token_mask_is_threshold_high is not None
    )


def _bounds_violations(
    ratio: torch.Tensor, low: float | None, high: float | None, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    under = (ratio < low) & valid if low is not None else torch.zeros_like(valid)
    over = (ratio > high) & valid if high is not None else torch.zeros_like(valid)
    return under, over


def _row_fraction(flags: torch.Tensor) -> float:
    return float(flags.to(torch.float64).mean().item()) if flags.numel() else 0.0


def _token_fraction(flags: torch.Tensor, valid: torch.Tensor) -> float:
    return float(flags.sum().item()) / max(int(valid.sum().item()), 1)


def off_policy_correction(
    *,
    old_log_probs: torch.Tensor,
    rollout_log_probs: torch.Tensor | None,
    loss_mask: torch.Tensor,
    config: Any,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """``(token_weights, token_mask, metrics)`` for one micro-batch; see the module docstring for the formulas.

    ``config`` is the ``trainer.algorithm.off_policy_correction`` section. All tensors are ``[batch, T]``;
    ``token_weights`` are detached (no gradient through the correction) and 1 where TIS is off; ``token_mask``
    is 0/1 in the loss mask's float dtype, 1 where nothing is dropped. Everything is per token or per row, so the
    result does not depend on how rows are grouped into micro-batches.

    Metrics (fractions are of the valid tokens, or of all rows, of this micro-batch; SkyRL's names):
    ``is_ratio_mean``/``is_ratio_min``/``is_ratio_max`` over valid tokens;
    ``outlier_seq_masked_ratio`` (+ ``_over_high_ratio``, ``_under_low_ratio``);
    ``token_mask_masked_ratio`` (+ ``token_mask_over_high_ratio``, ``token_mask_under_low_ratio``);
    ``tis_token_clip_high_ratio`` or ``tis_seq_clip_high_ratio`` (how often the cap fires);
    ``geo_sequence_mask_masked_ratio`` or ``product_sequence_mask_masked_ratio`` (+ ``_over_high_ratio``,
    ``_under_low_ratio``). Only the metrics of the parts that are on are returned.

    Raises :class:`UserError` when a correction is on but the engine sent no log-probs, or a key has an unknown
    value.
    """
    float_dtype = loss_mask.dtype if loss_mask.is_floating_point() else torch.float32
    ones = torch.ones(loss_mask.shape, dtype=float_dtype, device=loss_mask.device)
    if not off_policy_correction_enabled(config):
        return ones, ones.clone(), {}
    if rollout_log_probs is None:
        raise UserError(f"{_SECTION} is set but the batch has no rollout log-probs; use an engine that returns "
                        f"them (generator.sampling_params.logprobs) or unset {_SECTION}")
    if config.tis_ratio_type not in TIS_RATIO_TYPES:
        raise UserError(f"{_SECTION}.tis_ratio_type={config.tis_ratio_type!r} is unknown; use null, token or sequence")
    if config.sequence_mask_metric not in SEQUENCE_MASK_METRICS:
        raise UserError(f"{_SECTION}.sequence_mask_metric={config.sequence_mask_metric!r} is unknown; "
                        "use null, geometric or product")

    log_ratio = (old_log_probs.detach() - rollout_log_probs.detach()).to(float_dtype)
    ratio = _safe_exp(log_ratio)
    valid = loss_mask > 0
    keep = valid.clone()
    metrics = {
        "is_ratio_mean": float(masked_mean(ratio, valid).item()),
        "is_ratio_min": float(ratio[valid].min().item()) if valid.any() else 1.0,
        "is_ratio_max": float(ratio[valid].max().item()) if valid.any() else 1.0,
    }

    low, high = config.outlier_token_is_threshold_low, config.outlier_token_is_threshold_high
    if low is not None or high is not None:
        under, over = _bounds_violations(ratio, low, high, keep)
        row_under, row_over = under.any(dim=-1), over.any(dim=-1)
        keep &= ~(row_under | row_over).unsqueeze(-1)
        metrics["outlier_seq_masked_ratio"] = _row_fraction(row_under | row_over)
        metrics["outlier_seq_over_high_ratio"] = _row_fraction(row_over)
        metrics["outlier_seq_under_low_ratio"] = _row_fraction(row_under)

    low, high = config.token_mask_is_threshold_low, config.token_mask_is_threshold_high
    if low is not None or high is not None:
        before = keep.clone()
        under, over = _bounds_violations(ratio, low, high, keep)
        keep &= ~(under | over)
        metrics["token_mask_masked_ratio"] = _token_fraction(under | over, before)
        metrics["token_mask_over_high_ratio"] = _token_fraction(over, before)
        metrics["token_mask_under_low_ratio"] = _token_fraction(under, before)

    kept = keep.to(float_dtype)
    row_log_ratio = (log_ratio * kept).sum(dim=-1, keepdim=True)
    weights = ones
    if config.tis_ratio_type == "token":
        cap = float(config.token_tis_ratio_clip_high)
        weights = torch.clamp(ratio, max=cap)
        metrics["tis_token_clip_high_ratio"] = _token_fraction((ratio > cap) & keep, keep)
    elif config.tis_ratio_type == "sequence":
        cap = float(config.sequence_tis_ratio_clip_high)
        row_ratio = _safe_exp(row_log_ratio)
        weights = torch.clamp(row_ratio, max=cap).expand_as(ratio).clone()
        metrics["tis_seq_clip_high_ratio"] = _row_fraction(row_ratio.squeeze(-1) > cap)

    metric = config.sequence_mask_metric
    if metric is not None:
        if metric == "geometric":
            row = _safe_exp(row_log_ratio / kept.sum(dim=-1, keepdim=True).clamp(min=1.0))
            low, high, name = float(config.geo_mask_low), float(config.geo_mask_high), "geo_sequence_mask"
        else:
            row = _safe_exp(row_log_ratio)
            low, high, name = float(config.product_mask_low), float(config.product_mask_high), "product_sequence_mask"
        row_under, row_over = (row < low).squeeze(-1), (row > high).squeeze(-1)
        keep &= ~(row_under | row_over).unsqueeze(-1)
        metrics[f"{name}_masked_ratio"] = _row_fraction(row_under | row_over)
        metrics[f"{name}_over_high_ratio"] = _row_fraction(row_over)
        metrics[f"{name}_under_low_ratio"] = _row_fraction(row_under)

    token_mask = torch.where(valid & ~keep, torch.zeros_like(ones), ones)
    return weights.detach(), token_mask, metrics
