"""The ``dapo`` preset: DAPO's recipe (Yu et al. 2025) as config defaults plus three batch hooks.

Config defaults (each overridable by its dotted key): clip-higher (``eps_clip_low=0.2``, ``eps_clip_high=0.28``),
token-level loss (``loss_reduction=token_mean``), no KL loss, dynamic sampling by filtering
(``trainer.algorithm.dynamic_sampling.type=filter``), GRPO advantages with the PPO clipped surrogate, and the
paper's generation limit of 20480 tokens (16384 expected plus the 4096-token overlong buffer); an env's own limit,
applied after the preset, wins. Batch hooks, in order: dynamic sampling on the environment's rewards, soft
overlong punishment, overlong filtering. The preset asks skyrl to refill batches whose groups were dropped.
"""

from __future__ import annotations

from skyrl_algo_dapo.dynamic_sampling import dynamic_sampling
from skyrl_algo_dapo.overlong import overlong_filtering, soft_overlong_punishment
from skyrl_algo_dapo.plugin import DESCRIPTION
from skyrl_core.algorithms.preset import AlgorithmPreset

DAPO = AlgorithmPreset(
    defaults={
        "trainer.algorithm.advantage_estimator": "grpo",
        "trainer.algorithm.policy_loss_type": "regular",
        "trainer.algorithm.eps_clip_low": 0.2,
        "trainer.algorithm.eps_clip_high": 0.28,
        "trainer.algorithm.loss_reduction": "token_mean",
        "trainer.algorithm.use_kl_loss": False,
        "trainer.algorithm.dynamic_sampling.type": "filter",
        "generator.sampling_params.max_generate_length": 20480,
    },
    description=DESCRIPTION,
    batch_hooks=(dynamic_sampling, soft_overlong_punishment, overlong_filtering),
    refill_batches=True,
)
