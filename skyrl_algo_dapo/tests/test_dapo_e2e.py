"""``--algo dapo`` end to end on a local Ray cluster, CPU only, with a tiny random model.

A random tiny model never writes a right multiplication, so on ``multiply`` every group's rewards are all 0 and
dynamic sampling can keep nothing: that run must stop with the max_sample_batches message. The run that trains
uses a coin-flip env instead (reward = parity of the response's CRC32), so some groups differ and some do not,
and a stop string so that some responses stop and the others are cut at the length limit (overlong shaping).
"""

from __future__ import annotations

import math
import zlib

import pytest

from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl
from skyrl_core.config.loader import RunArgs, resolve_config
from skyrl_core.errors import UserError
from skyrl_core.trainer.launch import launch

pytestmark = pytest.mark.slow

SMALL = (
    "trainer.bf16=false", "trainer.train_batch_size=4", "trainer.policy_mini_batch_size=4",
    "generator.n_samples_per_prompt=4", "generator.sampling_params.max_generate_length=16",
    "trainer.eval_before_train=false", "trainer.eval_interval=0", "trainer.micro_train_batch_size_per_gpu=8",
    "trainer.micro_forward_batch_size_per_gpu=16", "trainer.gradient_checkpointing=false",
    "trainer.algorithm.presets.dapo.overlong_buffer_len=4",
)


class _CoinEnv(BaseTextEnv):
    def step(self, action):
        return BaseTextEnvStepOutput(reward=float(zlib.crc32(action.encode()) % 2), done=True)


class _CoinPlugin:
    @hookimpl
    def register_environments(self, register):
        register("coin", _CoinEnv)


def _coin_data(tmp_path, n=48):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": [{"role": "user", "content": f"Say something, number {i}."}], "env_class": "coin",
             "reward_spec": {"method": "rule", "ground_truth": ""}} for i in range(n)]
    path = tmp_path / "coin.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _config(pm, model, out, *overrides, env=None):
    args = RunArgs(env=env, algo="dapo", overrides=(
        f"trainer.policy.model.path={model}", f"trainer.output_dir={out}", *SMALL, *overrides))
    return resolve_config(args, pm)


def _metrics(run_dir):
    import json

    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_dapo_trains_with_dynamic_sampling_and_overlong_shaping(ray_local, plugin_manager, register_plugin,
                                                                 tiny_model_path, tmp_path):
    register_plugin(_CoinPlugin())
    out = tmp_path / "run"
    config = _config(plugin_manager, tiny_model_path, out, f"data.train_data=['{_coin_data(tmp_path)}']",
                     "trainer.max_training_steps=2", "generator.sampling_params.stop=['e']")
    launch(config, plugin_manager)
    steps = [m for m in _metrics(out) if m["step"] > 0 and "reward/mean" in m]
    assert [m["step"] for m in steps] == [1, 2]
    for metrics in steps:
        assert metrics["dynamic_sampling/kept_groups"] >= 4.0  # counted before the extra groups are trimmed
        assert metrics["dynamic_sampling/rounds"] >= 1.0
        assert math.isfinite(metrics["loss/policy"]) and math.isfinite(metrics["grad_norm"])


def test_dapo_on_multiply_with_a_random_model_stops_after_max_sample_batches(ray_local, plugin_manager,
                                                                             tiny_model_path, tmp_path):
    config = _config(plugin_manager, tiny_model_path, tmp_path / "run", "data.multiply.train_size=32",
                     "data.multiply.val_size=4", "trainer.algorithm.dynamic_sampling.max_sample_batches=2",
                     env="multiply")
    with pytest.raises(UserError, match=r"kept 0 of the 4 prompt groups .* after 2 generation rounds"):
        launch(config, plugin_manager)
