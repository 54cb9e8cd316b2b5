"""Built-in plugin: GRPO, GAE, RLOO and REINFORCE++ (estimators and presets) and the PPO-family policy losses."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.algorithms.preset import AlgorithmPreset
from skyrl_core.hookspecs import Register

_ESTIMATOR_DOCS = {
    "grpo": "group-normalised score (Shao et al. 2024)",
    "gae": "generalised advantage estimation with a critic (Schulman et al. 2016)",
    "rloo": "leave-one-out baseline (Ahmadian et al. 2024)",
    "reinforce++": "discounted return, batch-whitened (Hu 2025)",
}
_LOSS_DOCS = {
    "regular": "PPO clipped surrogate with asymmetric clip (Schulman et al. 2017; DAPO clip-higher)",
    "dual_clip": "PPO with a lower bound for negative advantages (Ye et al. 2020)",
    "gspo": "sequence-level importance ratio (Zheng et al. 2025)",
    "cispo": "clipped importance-sampling weight, gradient never zeroed (MiniMax-M1 2025)",
}


#: Registered name -> function in skyrl_core.algorithms.advantages / .losses (imported on first use).
_ESTIMATOR_FUNCTIONS = {"grpo": "grpo", "gae": "gae", "rloo": "rloo", "reinforce++": "reinforce_plus_plus"}


@hookimpl
def register_advantage_estimators(register: Register) -> None:
    for name, function in _ESTIMATOR_FUNCTIONS.items():
        register(name, f"skyrl_core.algorithms.advantages:{function}", description=_ESTIMATOR_DOCS[name])


@hookimpl
def register_policy_losses(register: Register) -> None:
    for name, doc in _LOSS_DOCS.items():
        register(name, f"skyrl_core.algorithms.losses:{name}", description=doc)


@hookimpl
def register_algorithms(register: Register) -> None:
    for name, doc in _ESTIMATOR_DOCS.items():
        register(
            name,
            AlgorithmPreset(defaults={"trainer.algorithm.advantage_estimator": name}, description=doc),
            description=doc,
        )
