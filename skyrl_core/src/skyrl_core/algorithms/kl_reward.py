"""KL penalty in the reward, and the controller of its coefficient.

With ``trainer.algorithm.use_kl_in_reward=true`` the per-token KL between the policy that sampled and the
reference policy is subtracted from the token rewards before advantages are computed (Ziegler et al. 2019,
"Fine-Tuning Language Models from Human Preferences", arXiv:1909.08593; Ouyang et al. 2022). The coefficient
comes from a :class:`KLController`: fixed, or adapted every step towards a target KL. Semantics follow SkyRL
0.3 (``apply_reward_kl_penalty``, ``FixedKLController`` / ``AdaptiveKLController``).
"""

from __future__ import annotations

from typing import Any

import torch

from skyrl_core.algorithms.names import KL_CONTROLLER_TYPES  # noqa: F401 - re-exported
from skyrl_core.errors import UserError

from .kl import kl_penalty
from .reduction import masked_mean

__all__ = ["KL_CONTROLLER_TYPES", "KLController", "apply_kl_in_reward"]


#: The adaptive controller moves the coefficient by at most this relative error per sample (Ziegler et al.).
_MAX_PROPORTIONAL_ERROR = 0.2


def apply_kl_in_reward(
    *,
    token_rewards: torch.Tensor,
    log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    loss_mask: torch.Tensor,
    coef: float,
    estimator: str,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``r'_t = r_t - max(coef, 0) * kl_t * m_t`` with ``kl_t = kl_penalty(log_probs, ref_log_probs, estimator)``.

    ``log_probs`` are the sampling policy's log-probs as the trainer computes them (the "old" log-probs),
    ``[batch, T]`` like the rest; mask-0 tokens keep their reward. No gradient flows (inputs are detached).
    Metrics (SkyRL names): ``loss/avg_kl`` = mean over rows of the row's masked mean KL (this is the
    ``current_kl`` to pass to :meth:`KLController.update`), ``loss/avg_kl_max`` = mean over rows of the row's
    largest ``|kl_t|`` on valid tokens, ``loss/kl_loss_coef`` = the coefficient used.
    """
    mask = loss_mask.to(token_rewards.dtype)
    kl = kl_penalty(log_probs.detach(), ref_log_probs.detach(), estimator).to(token_rewards.dtype) * mask
    used = max(float(coef), 0.0)
    new_rewards = token_rewards - used * kl
    row_mean = masked_mean(kl, mask, dim=-1)
    row_max = (kl.abs() * mask).max(dim=-1).values
    metrics = {
        "loss/avg_kl": float(row_mean.mean().item()),
        "loss/avg_kl_max": float(row_max.mean().item()),
        "loss/kl_loss_coef": used,
    }
    return new_rewards, metrics


class KLController:
    """The KL-in-reward coefficient ``value``: fixed, or adaptive (Ziegler et al. 2019, section 2.2).

    Adaptive update after each step, with ``current_kl`` the step's ``loss/avg_kl`` and ``n_steps`` the number of
    rows in the batch (SkyRL passes the batch size)::

        e = clip(current_kl / kl_target - 1, -0.2, 0.2)
        value <- value * (1 + e * n_steps / horizon)

    so the coefficient grows while the KL is above target and shrinks below it, by at most 20% per ``horizon``
    samples. The fixed controller ignores updates. ``state_dict()`` / ``load_state_dict()`` carry ``value``
    across a checkpoint resume.
    """

    def __init__(self, *, type: str, init_coef: float, kl_target: float = 0.1, horizon: int = 10000) -> None:
        if type not in KL_CONTROLLER_TYPES:
            raise UserError(f"trainer.algorithm.kl_ctrl.type={type!r} is unknown; use fixed or adaptive")
        if type == "adaptive" and (horizon <= 0 or kl_target <= 0):
            raise UserError("the adaptive KL controller needs trainer.algorithm.kl_ctrl.horizon > 0 and kl_target > 0")
        self.type = type
        self.value = float(init_coef)
        self.kl_target = float(kl_target)
        self.horizon = int(horizon)

    @classmethod
    def from_config(cls, algorithm: Any) -> KLController:
        """From ``trainer.algorithm``: ``kl_ctrl.{type, kl_target, horizon}``, starting at ``kl_loss_coef``."""
        ctrl = algorithm.kl_ctrl
        return cls(type=ctrl.type, init_coef=algorithm.kl_loss_coef, kl_target=ctrl.kl_target, horizon=ctrl.horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        if self.type == "fixed":
            return
        error = min(max(current_kl / self.kl_target - 1.0, -_MAX_PROPORTIONAL_ERROR), _MAX_PROPORTIONAL_ERROR)
        self.value *= 1.0 + error * n_steps / self.horizon

    def state_dict(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("type", self.type) != self.type:
            raise UserError(f"the checkpoint's KL controller is {state['type']!r} but trainer.algorithm.kl_ctrl.type "
                            f"is {self.type!r}; set it back or start a new run")
        self.value = float(state["value"])
