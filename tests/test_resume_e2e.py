"""Checkpoints and resume end to end (CPU, fp32, tiny model): exact continuation, another worker count, weights
only, and evaluation of an exported model."""

from __future__ import annotations

import math

import pytest
import torch
from e2e_helpers import read_metrics, run_config
from safetensors.torch import load_file

from skyrl_core.export import export_checkpoint
from skyrl_core.trainer.launch import launch

SMALL = ("data.multiply.train_size=64", "data.multiply.val_size=4", "trainer.ckpt_interval=2",
         "trainer.algorithm.use_kl_loss=false", "trainer.policy.optimizer_config.lr=1e-3")


def _run(pm, model, out, steps: int, *extra: str):
    config = run_config(pm, model, out, f"trainer.max_training_steps={steps}", *SMALL, *extra)
    launch(config, pm)


def _weights(checkpoint, tmp_path, name):
    folder = export_checkpoint(checkpoint, tmp_path / name)
    return load_file(str(folder / "model.safetensors"))


#: Measurements of the engine-vs-trainer gap: their last bits depend on which requests shared a decode batch.
NOISE = ("rollout/logprob_diff_mean", "weight_sync/probe_gap")


def _comparable(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith(("timing/", "throughput/")) and k not in NOISE}


@pytest.mark.parametrize("workers", [1, 2])
def test_resumed_run_continues_exactly(ray_local, plugin_manager, tiny_model_path, tmp_path, workers):
    placement = f"trainer.placement.policy_num_gpus_per_node={workers}"
    whole, split = tmp_path / "whole", tmp_path / "split"
    _run(plugin_manager, tiny_model_path, whole, 4, placement)
    _run(plugin_manager, tiny_model_path, split, 2, placement)
    assert (split / "ckpts" / "latest").read_text() == "global_step_2"
    _run(plugin_manager, tiny_model_path, split, 4, placement)  # resume_mode=latest by default
    a = _weights(whole / "ckpts" / "global_step_4", tmp_path, "a")
    b = _weights(split / "ckpts" / "global_step_4", tmp_path, "b")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    rows_a = {r["step"]: r for r in read_metrics(whole)}
    rows_b = [r for r in read_metrics(split)]
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]  # appended, nothing duplicated or lost
    for row in rows_b[2:]:
        assert _comparable(row) == pytest.approx(_comparable(rows_a[row["step"]]), rel=1e-6, abs=1e-9)
        for key in NOISE:
            assert row[key] == pytest.approx(rows_a[row["step"]][key], abs=1e-6)


def test_resume_with_another_worker_count_and_without_the_optimizer(ray_local, plugin_manager, tiny_model_path,
                                                                    tmp_path):
    out = tmp_path / "run"
    warmup = "trainer.policy.optimizer_config.num_warmup_steps=4"
    _run(plugin_manager, tiny_model_path, out, 2, warmup)
    _run(plugin_manager, tiny_model_path, out, 3, warmup, "trainer.placement.policy_num_gpus_per_node=2")
    _run(plugin_manager, tiny_model_path, out, 4, warmup, "trainer.resume_load_optimizer=false")
    rows = {r["step"]: r for r in read_metrics(out)}
    assert sorted(rows) == [1, 2, 3, 4]
    assert all(math.isfinite(rows[s]["loss/policy"]) for s in rows)
    # warm-up over 4 optimizer steps: lr * (k + 1) / 4. Step 3 kept the schedule (3/4); step 4 started a fresh
    # optimizer and schedule from the step-3 weights (1/4 again).
    assert rows[3]["lr"] == pytest.approx(1e-3 * 3 / 4)
    assert rows[4]["lr"] == pytest.approx(1e-3 * 1 / 4)


def test_skyrl_eval_of_an_export_matches_the_in_run_eval(ray_local, plugin_manager, tiny_model_path, tmp_path):
    from skyrl_core.trainer.eval_launch import launch_eval

    out = tmp_path / "run"
    _run(plugin_manager, tiny_model_path, out, 2, "trainer.eval_interval=2", "trainer.eval_batch_size=4",
         "trainer.hf_save_interval=2")
    in_run = next(r for r in read_metrics(out) if r["step"] == 2 and "eval/reward/mean" in r)
    export = out / "exports" / "global_step_2"
    assert (export / "config.json").is_file() and (export / "tokenizer_config.json").is_file()
    config = run_config(plugin_manager, export, tmp_path / "eval", *SMALL, "data.val_data=" + _val_file(out))
    _run_dir, metrics = launch_eval(config, checkpoint=None, model=str(export), pm=plugin_manager)
    for key in ("eval/reward/mean", "eval/response_length/mean"):
        assert metrics[key] == pytest.approx(in_run[key]), key
    from_ckpt = run_config(plugin_manager, export, tmp_path / "eval2", *SMALL, "data.val_data=" + _val_file(out))
    _run_dir, metrics = launch_eval(from_ckpt, checkpoint=str(out / "ckpts" / "global_step_2"), model=None,
                                    pm=plugin_manager)
    assert metrics["eval/response_length/mean"] == pytest.approx(in_run["eval/response_length/mean"])


def _val_file(run_dir) -> str:
    return "['" + str(run_dir / "data" / "validation.parquet") + "']"
