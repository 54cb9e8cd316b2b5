"""Row selection and concatenation of rollout batches, and the refill loop of presets that filter groups."""

from __future__ import annotations

import attrs
import pytest
import torch

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import UserError
from skyrl_core.generator import GeneratorOutput
from skyrl_core.trainer.batch import RolloutBatch, build_batch
from skyrl_core.trainer.sampling import sample_batch

PAD = 0


@attrs.frozen
class Row:
    index: int


def _output(prompts: list[list[int]], responses: list[list[int]], rewards: list[float]) -> GeneratorOutput:
    return GeneratorOutput(
        prompt_token_ids=prompts, response_ids=responses, loss_masks=[[1] * len(r) for r in responses],
        token_rewards=[[0.0] * (len(r) - 1) + [w] for r, w in zip(responses, rewards, strict=True)],
        rollout_logprobs=[[-1.0] * len(r) for r in responses], stop_reasons=["stop"] * len(responses),
        rewards=rewards, env_classes=["e"] * len(responses), env_metrics={}, num_env_errors=0, num_env_timeouts=0,
        num_turns=[1] * len(responses),
    )


def test_concat_repads_prompts_left_and_responses_right():
    a = build_batch(_output([[5, 6]], [[7, 8, 9]], [1.0]), [0], PAD)
    b = build_batch(_output([[1, 2, 3, 4]], [[9]], [0.0]), [1], PAD)
    both = RolloutBatch.concat([a, b], PAD)
    assert both.tensors["sequences"].tolist() == [[0, 0, 5, 6, 7, 8, 9], [1, 2, 3, 4, 9, 0, 0]]
    assert both.tensors["attention_mask"].tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]]
    assert both.tensors["loss_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert both.tensors["token_rewards"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert both.group_ids == [0, 1] and both.output.response_ids == [[7, 8, 9], [9]]
    picked = both.select([1])
    assert picked.tensors["sequences"].tolist() == [[1, 2, 3, 4, 9, 0, 0]] and picked.output.rewards == [0.0]


def _config(train_batch_size: int, n: int, max_rounds: int) -> SkyRLConfig:
    config = SkyRLConfig()
    config.trainer.train_batch_size = train_batch_size
    config.generator.n_samples_per_prompt = n
    config.trainer.algorithm.dynamic_sampling.max_sample_batches = max_rounds
    return config


def _generate_with(rewards_of: dict[int, list[float]]):
    """Each prompt row's group gets the listed rewards (one per sample)."""
    seen: dict[int, int] = {}

    def generate(rows: list[Row]) -> GeneratorOutput:
        rewards = []
        for row in rows:
            k = seen.get(row.index, 0)
            seen[row.index] = k + 1
            rewards.append(rewards_of[row.index][k])
        return _output([[3, 4]] * len(rows), [[5, 6]] * len(rows), rewards)

    return generate


def _drop_equal_groups(batch: RolloutBatch, config) -> RolloutBatch:
    scores: dict[int, set[float]] = {}
    for gid, reward in zip(batch.group_ids, batch.output.rewards, strict=True):
        scores.setdefault(gid, set()).add(reward)
    return batch.select_groups(lambda gid: len(scores[gid]) > 1)


def test_refill_keeps_generating_until_the_batch_is_full():
    rewards = {0: [1, 1], 1: [0, 1], 2: [0, 0], 3: [1, 0], 4: [0, 1], 5: [1, 1]}
    stream = iter([[Row(2), Row(3)], [Row(4), Row(5)]])
    sampled = sample_batch(prompts=[Row(0), Row(1)], more_prompts=stream, generate=_generate_with(rewards),
                           hooks=(_drop_equal_groups,), refill=True, config=_config(2, 2, 5), pad_token_id=PAD)
    assert sampled.batch.group_ids == [1, 1, 3, 3]  # groups 0 and 2 dropped; full after two rounds
    assert sampled.metrics["dynamic_sampling/rounds"] == 2.0
    assert len(sampled.outputs) == 2 and next(stream) == [Row(4), Row(5)]  # the third batch was not drawn


def test_refill_extra_groups_are_cut_and_the_round_limit_is_a_clear_error():
    rewards = {0: [0, 1], 1: [0, 1], 2: [1, 0]}
    sampled = sample_batch(prompts=[Row(0), Row(1), Row(2)], more_prompts=iter(()),
                           generate=_generate_with(rewards), hooks=(_drop_equal_groups,), refill=True,
                           config=_config(2, 2, 5), pad_token_id=PAD)
    assert sampled.batch.group_ids == [0, 0, 1, 1]
    flat = {i: [1, 1] for i in range(6)}
    with pytest.raises(UserError, match="max_sample_batches=2"):
        sample_batch(prompts=[Row(0), Row(1)], more_prompts=iter([[Row(2), Row(3)], [Row(4), Row(5)]]),
                     generate=_generate_with(flat), hooks=(_drop_equal_groups,), refill=True,
                     config=_config(2, 2, 2), pad_token_id=PAD)


def test_without_refill_one_round_and_no_sampling_metrics():
    sampled = sample_batch(prompts=[Row(0)], more_prompts=iter([[Row(1)]]), generate=_generate_with({0: [0, 1]}),
                           hooks=(), refill=False, config=_config(1, 2, 5), pad_token_id=PAD)
    assert sampled.metrics == {} and sampled.batch.num_rows == 2
    assert torch.equal(sampled.batch.tensors["loss_mask"], torch.ones(2, 2))
