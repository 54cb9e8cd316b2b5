"""check_algorithm_config: one clear line per inconsistent trainer.algorithm setting."""

from __future__ import annotations

import attrs

from skyrl_core.algorithms.checks import check_algorithm_config
from skyrl_core.config.schema import AlgorithmConfig


def test_defaults_are_consistent():
    assert check_algorithm_config(AlgorithmConfig()) == []


def test_kl_in_reward_with_kl_loss_is_refused_with_the_fix():
    problems = check_algorithm_config(AlgorithmConfig(use_kl_in_reward=True))  # use_kl_loss defaults to true
    assert len(problems) == 1
    assert "use_kl_in_reward and trainer.algorithm.use_kl_loss are both true" in problems[0]
    assert "set trainer.algorithm.use_kl_loss=false" in problems[0]
    assert check_algorithm_config(AlgorithmConfig(use_kl_in_reward=True, use_kl_loss=False)) == []


def test_each_bad_value_is_reported():
    with attrs.validators.disabled():  # the fields' own checks would refuse some of these first
        algorithm = AlgorithmConfig(kl_estimator_type="k9")
        algorithm.kl_ctrl.type = "adaptive"
        algorithm.kl_ctrl.horizon = 0
        algorithm.off_policy_correction = attrs.evolve(
            algorithm.off_policy_correction, tis_ratio_type="tokens", sequence_mask_metric="mean",
            token_tis_ratio_clip_high=0.0, geo_mask_low=1.02, token_mask_is_threshold_low=3.0,
            token_mask_is_threshold_high=2.0,
        )
        algorithm.sapo.tau_neg = 0.0
        algorithm.clip_cov.clip_cov_lb = 6.0
        algorithm.kl_cov.kl_cov_frac = 0.0
    text = "\n".join(check_algorithm_config(algorithm))
    for expected in (
        "kl_ctrl: the adaptive controller needs horizon > 0",
        "kl_estimator_type='k9' is unknown",
        "tis_ratio_type='tokens' is unknown",
        "sequence_mask_metric='mean' is unknown",
        "token_tis_ratio_clip_high=0.0 must be > 0",
        "geo_mask_low=1.02 must be below trainer.algorithm.off_policy_correction.geo_mask_high=1.01",
        "token_mask_is_threshold_low=3.0 must be below",
        "sapo.tau_pos and tau_neg must be > 0",
        "clip_cov.clip_cov_lb=6.0 must be below clip_cov_ub=5.0",
        "kl_cov.kl_cov_frac=0.0 must be in (0, 1]",
    ):
        assert expected in text
