"""Impossible placements are refused before any actor starts, naming what was asked and what exists."""

from __future__ import annotations

import pytest

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UserError
from skyrl_core.workers.placement_check import check_placement, gpus_needed


def _config(**placement) -> SkyRLConfig:
    config = SkyRLConfig()
    for key, value in placement.items():
        setattr(config.trainer.placement, key, value)
    return config


def test_colocated_runs_need_the_policy_gpus_only():
    config = _config(policy_num_gpus_per_node=4)
    assert sum(gpus_needed(config).values()) == 4
    check_placement(config, [4])
    with pytest.raises(UserError, match=r"asks for 4 GPUs .* the cluster has 2 \(1 node\(s\) with 2\)"):
        check_placement(config, [2])


def test_separate_placement_adds_engines_ref_and_critic():
    config = _config(colocate_all=False, policy_num_gpus_per_node=2, ref_num_gpus_per_node=1)
    config.generator.num_inference_engines = 2
    config.trainer.critic.model.path = "critic"
    assert gpus_needed(config) == {"policy": 2, "engines": 2, "ref": 1, "critic": 1}
    with pytest.raises(UserError, match="asks for 6 GPUs"):
        check_placement(config, [4])
    check_placement(config, [4, 2])


def test_policy_gpus_per_node_must_fit_on_one_node_and_cpu_clusters_pass():
    config = _config(policy_num_gpus_per_node=8)
    with pytest.raises(UserError, match="policy_num_gpus_per_node=8 but the largest node has 4 GPUs"):
        check_placement(config, [4, 4])
    check_placement(config, [0])  # no GPUs: a "GPU" is a CPU share
    check_placement(config, [])
