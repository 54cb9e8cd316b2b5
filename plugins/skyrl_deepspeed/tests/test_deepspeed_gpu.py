"""deepspeed ZeRO 1, 2, 3 on CUDA with NCCL (one process per GPU, at most 2), no Ray: the CPU conformance checks
on the GPU, the device memory of ZeRO-3 weight gathering, and a bf16 run."""

from __future__ import annotations

import math

import pytest
import torch
from harness_path import load_conformance_harness

from skyrl_deepspeed.config import DeepSpeedConfig

conformance = load_conformance_harness()

pytestmark = pytest.mark.gpu
STAGES = (1, 2, 3)


def _section(stage: int) -> DeepSpeedConfig:
    return DeepSpeedConfig(deepspeed_config={"zero_optimization": {"stage": stage}})


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory):
    from skyrl_core.testing.tiny_model import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("small-model"), size="small"))


def test_zero_on_cuda_matches_plain_torch(small_model_path, tmp_path):
    world = min(2, torch.cuda.device_count())
    reference = conformance.reference_run(small_model_path, device="cuda")
    results = conformance.spawn_run("deepspeed", [_section(s) for s in STAGES], small_model_path, str(tmp_path),
                                    world=world)
    for stage, result in zip(STAGES, results):
        conformance.assert_matches_reference(result, reference, rtol=1e-4)  # GPU kernels reduce in another order
        assert result["nan_step"].skipped and result["nan_step_kept_weights"], stage
        assert result["resumed_losses"] == result["losses"][conformance.CKPT_AFTER:], stage
        assert result["peak_device_extra_bytes"] <= 4 * max(conformance.BUCKET_BYTES, result["largest_bytes"])
        assert result["peak_device_extra_bytes"] < result["model_bytes"] / 4, stage


def test_zero3_bf16_on_cuda(small_model_path, tmp_path):
    reference = conformance.reference_run(small_model_path, device="cuda")
    [result] = conformance.spawn_run("deepspeed", [_section(3)], small_model_path, str(tmp_path),
                                     world=min(2, torch.cuda.device_count()), bf16=True)
    assert all(math.isfinite(loss) for loss in result["losses"])
    assert result["losses"][0] == pytest.approx(reference["losses"][0], rel=2e-2)
