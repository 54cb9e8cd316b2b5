"""Consistency checks of ``trainer.algorithm`` that no single field can express.

:func:`check_algorithm_config` returns one line per problem (key, what is wrong, the fix); the config validation
joins them into one :class:`~skyrl_core.errors.UserError`.
"""

from __future__ import annotations

from typing import Any

from skyrl_core.algorithms.names import KL_CONTROLLER_TYPES, KL_ESTIMATORS, SEQUENCE_MASK_METRICS, TIS_RATIO_TYPES

__all__ = ["check_algorithm_config"]

_KEY = "trainer.algorithm"


def _check_range(problems: list[str], key: str, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low >= high:
        problems.append(f"{key}_low={low} must be below {key}_high={high}")


def _off_policy_problems(section: Any) -> list[str]:
    key = f"{_KEY}.off_policy_correction"
    problems: list[str] = []
    if section.tis_ratio_type not in TIS_RATIO_TYPES:
        problems.append(f"{key}.tis_ratio_type={section.tis_ratio_type!r} is unknown; use null, token or sequence")
    if section.sequence_mask_metric not in SEQUENCE_MASK_METRICS:
        problems.append(f"{key}.sequence_mask_metric={section.sequence_mask_metric!r} is unknown; "
                        "use null, geometric or product")
    for cap in ("token_tis_ratio_clip_high", "sequence_tis_ratio_clip_high"):
        if getattr(section, cap) <= 0:
            problems.append(f"{key}.{cap}={getattr(section, cap)} must be > 0")
    _check_range(problems, f"{key}.geo_mask", section.geo_mask_low, section.geo_mask_high)
    _check_range(problems, f"{key}.product_mask", section.product_mask_low, section.product_mask_high)
    _check_range(problems, f"{key}.outlier_token_is_threshold",
                 section.outlier_token_is_threshold_low, section.outlier_token_is_threshold_high)
    _check_range(problems, f"{key}.token_mask_is_threshold",
                 section.token_mask_is_threshold_low, section.token_mask_is_threshold_high)
    return problems


def check_algorithm_config(algorithm: Any) -> list[str]:
    """Problems of ``trainer.algorithm`` (empty when it is consistent).

    * ``use_kl_in_reward`` with ``use_kl_loss`` would penalise the KL twice (SkyRL refuses it too).
    * ``kl_ctrl``: known type; the adaptive controller needs ``horizon > 0`` and ``kl_target > 0``.
    * ``kl_estimator_type`` is one of k1, k2, k3, abs.
    * ``off_policy_correction``: known ``tis_ratio_type`` / ``sequence_mask_metric``, positive caps, low < high.
    * ``sapo`` temperatures > 0; ``clip_cov`` bounds ordered and ``clip_ratio`` in [0, 1]; ``kl_cov.kl_cov_frac``
      in (0, 1].
    """
    problems: list[str] = []
    if algorithm.use_kl_in_reward and algorithm.use_kl_loss:
        problems.append(f"{_KEY}.use_kl_in_reward and {_KEY}.use_kl_loss are both true, which would penalise the KL "
                        f"twice; set {_KEY}.use_kl_loss=false to put the KL in the reward")
    ctrl = algorithm.kl_ctrl
    if ctrl.type not in KL_CONTROLLER_TYPES:
        problems.append(f"{_KEY}.kl_ctrl.type={ctrl.type!r} is unknown; use fixed or adaptive")
    elif ctrl.type == "adaptive" and (ctrl.horizon <= 0 or ctrl.kl_target <= 0):
        problems.append(f"{_KEY}.kl_ctrl: the adaptive controller needs horizon > 0 and kl_target > 0 "
                        f"(got horizon={ctrl.horizon}, kl_target={ctrl.kl_target})")
    if algorithm.kl_estimator_type not in KL_ESTIMATORS:
        problems.append(f"{_KEY}.kl_estimator_type={algorithm.kl_estimator_type!r} is unknown; "
                        f"use {', '.join(KL_ESTIMATORS)}")
    problems += _off_policy_problems(algorithm.off_policy_correction)
    if algorithm.sapo.tau_pos <= 0 or algorithm.sapo.tau_neg <= 0:
        problems.append(f"{_KEY}.sapo.tau_pos and tau_neg must be > 0 "
                        f"(got {algorithm.sapo.tau_pos}, {algorithm.sapo.tau_neg})")
    clip = algorithm.clip_cov
    if clip.clip_cov_lb >= clip.clip_cov_ub:
        problems.append(f"{_KEY}.clip_cov.clip_cov_lb={clip.clip_cov_lb} must be below clip_cov_ub={clip.clip_cov_ub}")
    if not 0.0 <= clip.clip_ratio <= 1.0:
        problems.append(f"{_KEY}.clip_cov.clip_ratio={clip.clip_ratio} must be in [0, 1]")
    if not 0.0 < algorithm.kl_cov.kl_cov_frac <= 1.0:
        problems.append(f"{_KEY}.kl_cov.kl_cov_frac={algorithm.kl_cov.kl_cov_frac} must be in (0, 1]")
    return problems
