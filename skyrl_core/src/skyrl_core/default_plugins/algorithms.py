"""Built-in plugin: the advantage estimators, the algorithm presets and the policy losses of skyrl-core."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.algorithms.preset import AlgorithmPreset
from skyrl_core.hookspecs import Register

#: Registered name -> (function in skyrl_core.algorithms.advantages, description).
_ESTIMATORS = {
    "grpo": ("grpo", "group-normalised score (Shao et al. 2024); grpo_norm_by_std=false for Dr. GRPO"),
    "gae": ("gae", "generalised advantage estimation with a critic (Schulman et al. 2016)"),
    "rloo": ("rloo", "leave-one-out baseline (Ahmadian et al. 2024)"),
    "reinforce++": ("reinforce_plus_plus", "discounted return, batch-whitened (Hu 2025)"),
    "reinforce++_baseline": (
        "reinforce_plus_plus_baseline",
        "score minus the group mean, batch-whitened (Hu 2025, REINFORCE++-baseline)",
    ),
}
#: Registered name -> ("module:function", description).
_LOSSES = {
    "regular": ("losses:regular", "PPO clipped surrogate with clip-higher (Schulman et al. 2017; Yu et al. 2025)"),
    "dual_clip": ("losses:dual_clip", "PPO with a lower bound for negative advantages (Ye et al. 2020)"),
    "gspo": ("losses:gspo", "sequence-level importance ratio (Zheng et al. 2025)"),
    "cispo": ("losses:cispo", "clipped importance-sampling weight, gradient never zeroed (MiniMax-M1 2025)"),
    "sapo": ("losses:sapo", "soft temperature-controlled gate instead of a hard clip (Gao et al. 2025)"),
    "clip_cov": ("covariance_losses:clip_cov", "PPO clip plus detaching high-covariance tokens (Cui et al. 2025)"),
    "kl_cov": ("covariance_losses:kl_cov", "KL penalty on high-covariance tokens (Cui et al. 2025)"),
}
_DR_GRPO = AlgorithmPreset(
    defaults={
        "trainer.algorithm.advantage_estimator": "grpo",
        "trainer.algorithm.grpo_norm_by_std": False,
        "trainer.algorithm.loss_reduction": "seq_mean_token_sum_norm",
    },
    description="Dr. GRPO (Liu et al. 2025): no std division, constant length normaliser",
)


@hookimpl
def register_advantage_estimators(register: Register) -> None:
    for name, (function, doc) in _ESTIMATORS.items():
        register(name, f"skyrl_core.algorithms.advantages:{function}", description=doc)


@hookimpl
def register_policy_losses(register: Register) -> None:
    for name, (target, doc) in _LOSSES.items():
        register(name, f"skyrl_core.algorithms.{target}", description=doc)


@hookimpl
def register_algorithms(register: Register) -> None:
    for name, (_function, doc) in _ESTIMATORS.items():
        register(
            name,
            AlgorithmPreset(defaults={"trainer.algorithm.advantage_estimator": name}, description=doc),
            description=doc,
        )
    register("dr_grpo", _DR_GRPO, description=_DR_GRPO.description)
