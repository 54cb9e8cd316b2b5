"""Worker-level checks: gradients independent of micro-batch size and worker count; exact weight sync."""

from __future__ import annotations

import pytest
import torch
from e2e_helpers import run_config

from skyrl_core.config.components import resolve_auto
from skyrl_core.config.loader import config_to_dict
from skyrl_core.trainer.train_batch import TrainingBatch, split_for_workers
from skyrl_core.workers.groups import WorkerGroup, make_placement


def _batch(vocab: int, rows: int = 8, prompt: int = 6, response: int = 10, group: int = 4) -> TrainingBatch:
    """GRPO-like rows: each prompt repeated for ``group`` rows (the shared-prompt forward packs them)."""
    gen = torch.Generator().manual_seed(0)
    sequences = torch.randint(3, vocab, (rows, prompt + response), generator=gen)
    sequences[:, :prompt] = sequences[::group, :prompt].repeat_interleave(group, 0)
    attention = torch.ones_like(sequences)
    loss_mask = torch.ones(rows, response)
    for i in range(rows):  # varied left padding (per prompt) and response lengths
        attention[i, : (i // group * 2) % 3] = 0
        cut = response - (i % 4)
        loss_mask[i, cut:] = 0
        attention[i, prompt + cut :] = 0
    return TrainingBatch(
        sequences=sequences, attention_mask=attention, loss_mask=loss_mask,
        old_logprobs=-torch.rand(rows, response, generator=gen) * 6,
        ref_logprobs=-torch.rand(rows, response, generator=gen) * 6,
        advantages=torch.randn(rows, response, generator=gen) * loss_mask,
        rollout_logprobs=torch.zeros(rows, response),
    )


def _grads(pm, model, tmp_path, *, world: int, micro: int, reduction: str, on_policy: bool = False,
           shared_prompts: bool = True):
    config = run_config(pm, model, tmp_path / f"w{world}m{micro}{shared_prompts}",
                        f"trainer.micro_train_batch_size_per_gpu={micro}",
                        f"trainer.placement.policy_num_gpus_per_node={world}",
                        f"trainer.algorithm.loss_reduction={reduction}",
                        f"trainer.shared_prompt_forward={str(shared_prompts).lower()}")
    resolve_auto(config, pm)
    group = WorkerGroup(role="policy", config=config, config_dict=config_to_dict(config, redact_secrets=False),
                        world_size=world, placement=make_placement(config, world), num_threads=1)
    try:
        requests = split_for_workers(_batch(512), dp_size=world, rows_per_mini_batch=8, max_seq_len=16,
                                     on_policy=on_policy)
        group.run_data_parallel("accumulate_policy_grads", [(r,) for r in requests])
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
    (unshared,) = _grads(plugin_manager, tiny_model_path, tmp_path, world=1, micro=4, reduction=reduction,
                         shared_prompts=False)
    two_workers = _grads(plugin_manager, tiny_model_path, tmp_path, world=2, micro=1, reduction=reduction)
    assert reference and set(reference) == set(micro4)
    for name, grad in reference.items():
        assert grad.abs().sum() > 0 or "embed" in name
        torch.testing.assert_close(micro4[name], grad, atol=1e-5, rtol=0)  # each group's prompt computed once
        torch.testing.assert_close(unshared[name], grad, atol=1e-5, rtol=0)
        for rank_grads in two_workers:
            torch.testing.assert_close(rank_grads[name], grad, atol=1e-5, rtol=0)


def _two_gpus() -> bool:
    return torch.cuda.is_available() and torch.cuda.device_count() >= 2


#: nccl never puts two ranks on one GPU: the policy and the one engine each get a GPU of their own.
NCCL = pytest.param("nccl", ("generator.num_inference_engines=1", "trainer.placement.colocate_all=false"),
                    marks=[pytest.mark.gpu, pytest.mark.skipif(not _two_gpus(), reason="needs 2 CUDA GPUs")])


@pytest.mark.parametrize(("backend", "placement"), [("gloo", ("generator.num_inference_engines=2",)),
                                                    ("ray", ("generator.num_inference_engines=2",)), NCCL])
def test_weight_sync_makes_engine_weights_equal_policy_weights(ray_local, plugin_manager, tiny_model_path, tmp_path,
                                                               backend, placement):
    import ray

    from skyrl_core.trainer.actors import RunActors
    from skyrl_core.trainer.weight_sync import WeightSyncDriver

    config = run_config(plugin_manager, tiny_model_path, tmp_path / "run", f"generator.weight_sync_backend={backend}",
                        *placement, "trainer.policy.optimizer_config.lr=1e-2", "trainer.algorithm.use_kl_loss=false")
    resolve_auto(config, plugin_manager)
    actors = RunActors(config, config_to_dict(config, redact_secrets=False), plugin_manager, cpu_count=2)
    try:
        driver = WeightSyncDriver(config, actors)
        before = ray.get(actors.engines[0].state_dict.remote())
        requests = split_for_workers(_batch(512), dp_size=1, rows_per_mini_batch=8, max_seq_len=16)
        actors.policy.run_data_parallel("train_policy", [(r,) for r in requests])
        policy = actors.policy.run("state_dict")[0]
        assert any(not torch.equal(policy[k], before[k]) for k in policy), "training did not change the weights"
        metrics = driver.sync()
        assert metrics["weight_sync/probe_gap"] < 1e-3
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


def test_on_policy_shortcut_gives_the_same_gradients_as_explicit_old_logprobs(ray_local, plugin_manager,
                                                                              tiny_model_path, tmp_path):
    """On the first mini-batch the policy that trains is the one that sampled: the detached training forward
    (``on_policy=True``) and a separate old-log-prob pass give the same ratio (1), so the same gradients."""
    import ray

    config = run_config(plugin_manager, tiny_model_path, tmp_path / "run", "trainer.micro_train_batch_size_per_gpu=2")
    resolve_auto(config, plugin_manager)
    results = {}
    for on_policy in (False, True):
        group = WorkerGroup(role="policy", config=config, config_dict=config_to_dict(config, redact_secrets=False),
                            world_size=1, placement=make_placement(config, 1), num_threads=1)
        try:
            batch = _batch(512)
            batch.old_logprobs = None if on_policy else group.run("compute_logprobs", batch.forward_inputs())[0]
            requests = split_for_workers(batch, dp_size=1, rows_per_mini_batch=8, max_seq_len=16,
                                         on_policy=on_policy)
            group.run_data_parallel("accumulate_policy_grads", [(r,) for r in requests])
            (results[on_policy],) = group.run("grads")
        finally:
            for actor in group.actors:
                ray.kill(actor)
    assert results[True] and results[True].keys() == results[False].keys()
    for name, grad in results[False].items():
        torch.testing.assert_close(results[True][name], grad, atol=1e-6, rtol=1e-5)


def test_dtype_runs_split_a_chunk_into_one_buffer_per_dtype():
    from skyrl_core.weight_sync.collective import dtype_runs

    assert dtype_runs(["float32", "float32", "bfloat16", "float32"]) == [(0, 2), (2, 3), (3, 4)]
    assert dtype_runs([]) == []
