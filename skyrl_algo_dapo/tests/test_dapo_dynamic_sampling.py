"""Dynamic sampling on hand-built batches, alone and inside skyrl's refill loop."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from dapo_batches import PAD, dapo_config, grouped_batch, make_output

from skyrl_algo_dapo.dynamic_sampling import dynamic_sampling, filter_groups, informative_groups, replace_groups
from skyrl_core.algorithms.advantages import grpo
from skyrl_core.errors import UserError
from skyrl_core.trainer.sampling import sample_batch

#: Groups 1 and 2 have rewards that are all equal; 0 and 3 are informative.
MIXED = [[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]]


def test_filter_drops_exactly_the_groups_whose_rewards_are_all_equal():
    batch = grouped_batch(MIXED)
    kept = filter_groups(batch)
    assert kept.group_ids == [0, 0, 0, 0, 3, 3, 3, 3]
    assert kept.output.rewards == [1.0, 0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.0]
    original = batch.tensors["sequences"]
    assert torch.equal(kept.tensors["sequences"], torch.cat([original[0:4], original[12:16]]))
    assert kept.num_rows == 8 and kept.num_groups == 2


def test_rewards_within_float_noise_count_as_equal_and_single_responses_are_kept():
    batch = grouped_batch([[0.3, 0.1 + 0.2], [1.0], [0.0, 1e-3]])
    assert informative_groups(batch) == [1, 2]


def test_replace_keeps_the_batch_size_with_copies_of_informative_groups():
    batch = grouped_batch(MIXED)
    replaced = replace_groups(batch, min_replace_ratio=0.3)
    assert replaced.num_rows == batch.num_rows and replaced.num_groups == 4
    # group 1 becomes a copy of group 0, group 2 a copy of group 3 (round-robin over the informative groups)
    assert replaced.output.rewards == MIXED[0] + MIXED[0] + MIXED[3] + MIXED[3]
    assert replaced.group_ids[4:8] == [("copy", 1, 0)] * 4 and replaced.group_ids[8:12] == [("copy", 2, 3)] * 4
    sequences = batch.tensors["sequences"]
    assert torch.equal(replaced.tensors["sequences"][4:8], sequences[0:4])
    assert torch.equal(replaced.tensors["sequences"][8:12], sequences[12:16])
    # every row now has a gradient signal: a copy's GRPO advantages equal its source's
    advantages, _ = grpo(token_level_rewards=replaced.tensors["token_rewards"],
                         response_mask=replaced.tensors["loss_mask"], index=replaced.group_ids)
    assert torch.equal(advantages[4:8], advantages[0:4]) and torch.equal(advantages[8:12], advantages[12:16])
    assert bool((advantages.abs().sum(-1) > 0).all())


def test_replace_with_too_few_informative_groups_discards_the_round():
    batch = grouped_batch(MIXED)  # 2 of 4 informative
    assert replace_groups(batch, min_replace_ratio=0.5).num_rows == 0  # needs more than 2
    assert replace_groups(batch, min_replace_ratio=0.49).num_rows == 16
    assert replace_groups(grouped_batch([[1.0, 1.0], [0.0, 0.0]]), min_replace_ratio=0.0).num_rows == 0


def test_replace_leaves_a_fully_informative_batch_alone():
    batch = grouped_batch([[1.0, 0.0], [0.0, 1.0]])
    assert replace_groups(batch, min_replace_ratio=0.3) is batch


def test_hook_follows_the_configured_type(plugin_manager):
    batch = grouped_batch(MIXED)
    assert dynamic_sampling(batch, dapo_config(plugin_manager)).num_rows == 8  # default: filter
    replace = dapo_config(plugin_manager, "trainer.algorithm.dynamic_sampling.type=replace")
    assert dynamic_sampling(batch, replace).num_rows == 16
    off = dapo_config(plugin_manager, "trainer.algorithm.dynamic_sampling.type=null")
    assert dynamic_sampling(batch, off) is batch


# -- inside skyrl's refill loop (skyrl_core.trainer.sampling), with the preset's hooks ---------------------------


def _rounds_generator(rounds: list[list[list[float]]]):
    """``generate(rows)`` whose k-th call gives the rows' groups the rewards ``rounds[k]`` (one list per prompt)."""
    calls = iter(rounds)

    def generate(rows):
        groups = next(calls)
        n = len(rows) // len(groups)
        return make_output([groups[i // n][i % n] for i in range(len(rows))])

    return generate


def _sample(pm, rounds, *overrides):
    from skyrl_algo_dapo.preset import DAPO

    config = dapo_config(pm, "trainer.train_batch_size=2", "trainer.policy_mini_batch_size=2",
                         "generator.n_samples_per_prompt=2", "generator.sampling_params.max_generate_length=16",
                         *overrides)
    prompts = [[SimpleNamespace(index=2 * k), SimpleNamespace(index=2 * k + 1)] for k in range(len(rounds))]
    return sample_batch(prompts=prompts[0], more_prompts=iter(prompts[1:]), generate=_rounds_generator(rounds),
                        hooks=DAPO.batch_hooks, refill=DAPO.refill_batches, config=config, pad_token_id=PAD)


def test_filter_generates_until_the_batch_is_full(plugin_manager):
    sampled = _sample(plugin_manager, [[[1.0, 1.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    assert sampled.batch.group_ids == [1, 1, 4, 4]
    assert sampled.metrics["dynamic_sampling/rounds"] == 3.0
    assert len(sampled.outputs) == 3


def test_filter_stops_with_a_clear_error_after_max_sample_batches(plugin_manager):
    with pytest.raises(UserError, match="max_sample_batches=2"):
        _sample(plugin_manager, [[[1.0, 1.0], [0.0, 0.0]]] * 3,
                "trainer.algorithm.dynamic_sampling.max_sample_batches=2")


def test_replace_regenerates_a_discarded_round_then_keeps_the_full_batch(plugin_manager):
    sampled = _sample(plugin_manager, [[[1.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 1.0]]],
                      "trainer.algorithm.dynamic_sampling.type=replace",
                      "trainer.algorithm.dynamic_sampling.min_replace_ratio=0.4")
    assert sampled.metrics["dynamic_sampling/rounds"] == 2.0
    assert sampled.batch.group_ids == [2, 2, ("copy", 1, 2), ("copy", 1, 2)]
    assert sampled.batch.output.rewards == [1.0, 0.0, 1.0, 0.0]
