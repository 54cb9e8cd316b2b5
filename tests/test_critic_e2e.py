"""PPO with a critic on CPU: the critic's value loss goes down on a fixed batch, and `--algo gae` runs."""

from __future__ import annotations

import math

import torch
from e2e_helpers import read_metrics, run_config

from skyrl_core.config.components import resolve_auto
from skyrl_core.config.loader import config_to_dict
from skyrl_core.trainer.launch import launch
from skyrl_core.trainer.train_batch import TrainingBatch, split_for_workers
from skyrl_core.workers.groups import WorkerGroup, make_placement


def test_critic_trains_its_value_loss_down_on_a_fixed_batch(ray_local, plugin_manager, tiny_model_path, tmp_path):
    import ray

    config = run_config(plugin_manager, tiny_model_path, tmp_path / "run", "trainer.algorithm.value_clip=0.2",
                        f"trainer.critic.model.path={tiny_model_path}", "trainer.critic.optimizer_config.lr=1e-2",
                        "trainer.critic_mini_batch_size=4",
                        env="multiply", algo="gae")
    resolve_auto(config, plugin_manager)
    group = WorkerGroup(role="critic", config=config, config_dict=config_to_dict(config, redact_secrets=False),
                        world_size=1, placement=make_placement(config, 1), num_threads=1)
    try:
        gen = torch.Generator().manual_seed(0)
        sequences = torch.randint(3, 200, (8, 12), generator=gen)
        batch = TrainingBatch(sequences=sequences, attention_mask=torch.ones_like(sequences),
                              loss_mask=torch.ones(8, 6), returns=torch.linspace(-1, 1, 48).reshape(8, 6))
        losses = []
        for _ in range(12):
            batch.values = group.run("compute_values", batch.forward_inputs())[0]
            (request,) = split_for_workers(batch, dp_size=1, rows_per_mini_batch=8, max_seq_len=None)
            metrics = group.run_data_parallel("train_critic", [(request,)])[0]
            losses.append(metrics["critic/value_loss"])
        assert all(math.isfinite(v) for v in losses)
        assert losses[-1] < 0.5 * losses[0], losses
    finally:
        for actor in group.actors:
            ray.kill(actor)


def test_gae_with_a_critic_runs_end_to_end(ray_local, plugin_manager, tiny_model_path, tmp_path):
    out = tmp_path / "run"
    config = run_config(plugin_manager, tiny_model_path, out, "trainer.max_training_steps=2",
                        f"trainer.critic.model.path={tiny_model_path}", "trainer.critic_mini_batch_size=4",
                        "data.multiply.train_size=32",
                        "data.multiply.val_size=4", "trainer.algorithm.use_kl_loss=false", algo="gae")
    launch(config, plugin_manager)
    rows = [r for r in read_metrics(out) if "critic/value_loss" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        for key in ("critic/value_loss", "critic/explained_variance", "critic/clip_fraction", "loss/policy"):
            assert key in row, key
        assert math.isfinite(row["critic/value_loss"])
    assert (out / "ckpts" / "global_step_2" / "critic" / "model.safetensors").is_file()
