"""The ``multiply`` env against skyrl's env contract (:class:`skyrl_core.testing.EnvContract`)."""

from __future__ import annotations

from skyrl_core.testing import EnvContract, EnvSample
from skyrl_env_multiply.dataset import make_row


class TestMultiplyEnvContract(EnvContract):
    env_name = "multiply"
    samples = [
        EnvSample(row=make_row(12, 34, 2, "train"), right="12 * 34 = \\boxed{408}", wrong="\\boxed{418}"),
        EnvSample(row=make_row(7, 8, 1, "validation"), right="\\boxed{56}", wrong="56, no box",
                  wrong_reward=0.0),
        EnvSample(
            row={
                "data_source": "synthetic_multiply",
                "prompt": [{"role": "user", "content": "What is 250 * 4?"}],
                "env_class": "multiply",
                "reward_spec": {"method": "rule", "ground_truth": "1000"},
                "extra_info": {"num_digits": 3, "split": "train"},
                "difficulty": "easy",  # an extra column reaches the env in extras
            },
            right="The product is \\boxed{ 1000 }.",
            wrong="\\boxed{100}",
        ),
    ]
