"""Worker-level checks: gradients independent of micro-batch size and worker count; exact weight sync."""

from __future__ import annotations

import pytest
import torch
from e2e_helpers import run_config

from skyrl_core.config.components import resolve_auto
from skyrl_core.config.loader import config_to_dict
from skyrl_core.trainer.batch import RolloutBatch, split_for_workers
from skyrl_core.workers.groups import WorkerGroup, make_placement


def _batch(vocab: int, rows: int = 8, prompt: int = 6, response: int = 10) -> RolloutBatch:
    gen = torch.Generator().manual_seed(0)
    sequences = torch.randint(3, vocab, (rows, prompt + response), generator=gen)
    attention = torch.ones_like(sequences)
    loss_mask = torch.ones(rows, response)
    for i in range(rows):  # varied left padding and response lengths
        attention[i, : i % 3] = 0
        cut = response - (i % 4)
        loss_mask[i, cut:] = 0
        attention[i, prompt + cut :] = 0
    tensors = {
        "sequences": sequences,
        "attention_mask": attention,
        "loss_mask": loss_mask,
        "old_logprobs": -torch.rand(rows, response, generator=gen) * 6,
        "ref_logprobs": -torch.rand(rows, response, generator=gen) * 6,
        "advantages": torch.randn(rows, response, generator=gen) * loss_mask,
        "rollout_logprobs": torch.zeros(rows, response),
    }
    return RolloutBatch(tensors=tensors, group_ids=list(range(rows)), output=None)


def _grads(pm, model, tmp_path, *, world: int, micro: int, reduction: str):
    config = run_config(pm, model, tmp_path / f"w{world}m{micro}", f"trainer.micro_train_batch_size_per_gpu={micro}",
                        f"trainer.placement.policy_num_gpus_per_node={world}",
                        f"trainer.algorithm.loss_reduction={reduction}")
    resolve_auto(config, pm)
    group = WorkerGroup(role="policy", config=config, config_dict=config_to_dict(config, redact_secrets=False),
                        world_size=world, placement=make_placement(config, world), num_threads=1)
    try:
        shards = split_for_workers(_batch(512), world_size=world, rows_per_mini_batch=8, max_seq_len=16)
        group.run_each("accumulate_policy_grads", [(data, specs[0]) for data, specs in shards])
        return group.run("grads")
    finally:
        import ray

        for actor in group.actors:
            ray.kill(actor)


@pytest.mark.parametrize("reduction", ["token_mean", "sequence_mean"])
def test_gradients_do_not_depend_on_micro_batch_or_workers(ray_local, plugin_manager, tiny_model_path, tmp_path,
                                                           reduction):
    (reference,) = _grads(plugin_manager, tiny_model_path, tmp_path, world=1, micro=1, reduction=reduction)
    (micro4,) = _grads(plugin_manager, tiny_model_path, tmp_path, world=1, micro=4, reduction=reduction)
    two_workers = _grads(plugin_manager, tiny_model_path, tmp_path, world=2, micro=1, reduction=reduction)
    assert reference and set(reference) == set(micro4)
    for name, grad in reference.items():
        assert grad.abs().sum() > 0 or "embed" in name
        torch.testing.assert_close(micro4[name], grad, atol=1e-5, rtol=0)
        for rank_grads in two_workers:
            torch.testing.assert_close(rank_grads[name], grad, atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["gloo", "ray", pytest.param("nccl", marks=pytest.mark.gpu)])
def test_weight_sync_makes_engine_weights_equal_policy_weights(ray_local, plugin_manager, tiny_model_path, tmp_path,
                                                               backend):
    import ray

    from skyrl_core.trainer.actors import RunActors
    from skyrl_core.trainer.weight_sync import WeightSyncDriver

    config = run_config(plugin_manager, tiny_model_path, tmp_path / "run", f"generator.weight_sync_backend={backend}",
                        "generator.num_inference_engines=2", "trainer.policy.optimizer_config.lr=1e-2",
                        "trainer.algorithm.use_kl_loss=false")
    resolve_auto(config, plugin_manager)
    actors = RunActors(config, config_to_dict(config, redact_secrets=False), plugin_manager, cpu_count=2)
    try:
        driver = WeightSyncDriver(config, actors)
        before = ray.get(actors.engines[0].state_dict.remote())
        shards = split_for_workers(_batch(512), world_size=1, rows_per_mini_batch=8, max_seq_len=16)
        actors.policy.run_each("train_policy", shards)
        policy = actors.policy.run("state_dict")[0]
        assert any(not torch.equal(policy[k], before[k]) for k in policy), "training did not change the weights"
        driver.sync()
        for engine in actors.engines:
            synced = ray.get(engine.state_dict.remote())
            assert set(synced) == set(policy)
            for name, tensor in policy.items():
                assert torch.equal(synced[name], tensor), name
    finally:
        actors.shutdown()


def test_explicit_backend_that_is_not_installed_exits_2(skyrl_cli, tiny_model_path):
    result = skyrl_cli("run", "--env", "multiply", f"trainer.policy.model.path={tiny_model_path}",
                       "generator.backend=vllm")
    assert result.returncode == 2
    assert "skyrl-vllm" in result.stderr and "Traceback" not in result.stderr


def test_buckets_group_same_dtype_runs_within_the_limit():
    from skyrl_core.weight_sync.collective import buckets

    specs = [("a", (4,), "torch.float32"), ("b", (2, 2), "torch.float32"), ("c", (8,), "torch.float32"),
             ("d", (3,), "torch.bfloat16"), ("e", (100,), "torch.float32")]
    # a+b = 32 bytes fit in 40; c (32 bytes) would exceed it; d changes dtype; e (400 bytes) is alone
    assert buckets(specs, 40) == [[0, 1], [2], [3], [4]]
    assert buckets(specs, 1e9) == [[0, 1, 2], [3], [4]]
