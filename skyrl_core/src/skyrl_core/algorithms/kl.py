"""Per-token KL-divergence estimators between the policy and the reference policy.

Source: J. Schulman, "Approximating KL Divergence" (2020), http://joschu.net/blog/kl-approx.html, with the
names used by SkyRL / verl ``kl_penalty``. Samples come from the policy, so with
``d = log pi(x) - log pi_ref(x)`` each estimator is an (approximately) unbiased per-sample estimate of
``KL(pi || pi_ref)``.
"""

from __future__ import annotations

import torch

from skyrl_core.algorithms.names import KL_ESTIMATORS  # noqa: F401 - re-exported
from skyrl_core.errors import UserError

__all__ = ["KL_ESTIMATORS", "kl_penalty"]


_LOG_RATIO_CLAMP = 20.0


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL estimate (same shape as the inputs; not masked, not reduced).

    With ``d = log_probs - ref_log_probs``:

    * ``"k1"``:  ``d`` (unbiased, high variance, can be negative)
    * ``"k2"``:  ``0.5 * d^2`` (biased, low variance)
    * ``"k3"``:  ``exp(-d) - (-d) - 1`` = ``exp(logref - logp) - (logref - logp) - 1`` (unbiased, >= 0).
      The log-ratio ``logref - logp`` is clamped to ``[-20, 20]`` before ``exp``, as SkyRL does. Deviation on
      purpose: SkyRL also clamps the result to ``[-10, 10]``; we do not, so a token far from the reference keeps
      its full penalty (and its gradient) instead of a flat 10.
    * ``"abs"``: ``|d|``
    """
    if estimator not in KL_ESTIMATORS:
        raise UserError(f"unknown KL estimator {estimator!r}; valid: {', '.join(KL_ESTIMATORS)}")
    d = log_probs - ref_log_probs
    if estimator == "k1":
        return d
    if estimator == "k2":
        return 0.5 * d.square()
    if estimator == "abs":
        return d.abs()
    neg = torch.clamp(-d, min=-_LOG_RATIO_CLAMP, max=_LOG_RATIO_CLAMP)
    return torch.exp(neg) - neg - 1.0
