"""Impossible placements are refused before any actor starts, naming what was asked and what exists."""

from __future__ import annotations

import pytest

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UserError
from skyrl_core.workers.placement_check import check_placement, cpu_share, gpus_needed


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


def test_a_group_on_more_nodes_than_alive_is_refused_with_or_without_gpus():
    config = _config(policy_num_nodes=2)
    for nodes in ([0], [4]):
        with pytest.raises(UserError, match=r"policy_num_nodes=2 but the Ray cluster has 1 alive node\(s\)"):
            check_placement(config, nodes)
    check_placement(config, [0, 0])
    config = _config(ref_num_nodes=3)
    config.trainer.algorithm.use_kl_loss = False
    check_placement(config, [0, 0])  # no KL: no ref group
    config.trainer.algorithm.use_kl_loss = True
    with pytest.raises(UserError, match="ref_num_nodes=3"):
        check_placement(config, [0, 0])


def test_cpu_share_fits_the_nodes_not_just_the_total():
    assert cpu_share([4.0], 2, []) == 1.99
    # 3 actors on two 2-CPU nodes: 4/3 fits the total but no node holds two actors of 1.33, so the third pends
    assert cpu_share([2.0, 2.0], 3, []) == 0.99
    # a group of 2 nodes x 2 workers needs 2 slots on each node, the 1-CPU one included
    assert cpu_share([4.0, 1.0], 3, []) == 1.32
    assert cpu_share([4.0, 1.0], 3, [(2, 2)]) == 0.49
    assert cpu_share([], 2, []) == 0.01
