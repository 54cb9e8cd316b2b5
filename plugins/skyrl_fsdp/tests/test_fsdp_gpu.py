"""fsdp2 on CUDA with NCCL (one process per GPU, at most 2), no Ray: the CPU conformance checks on the GPU, the
device memory of weight streaming, and a bf16 run."""

from __future__ import annotations

import math

import pytest
import strategy_conformance as conformance
import torch

from skyrl_fsdp.config import FSDPConfig

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory):
    from skyrl_core.testing.tiny_model import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("small-model"), size="small"))


def test_fsdp2_on_cuda_matches_plain_torch(small_model_path, tmp_path):
    world = min(2, torch.cuda.device_count())
    reference = conformance.reference_run(small_model_path, device="cuda")
    [result] = conformance.spawn_run("fsdp2", [FSDPConfig()], small_model_path, str(tmp_path), world=world)
    conformance.assert_matches_reference(result, reference, rtol=1e-4)  # GPU kernels reduce in another order
    assert result["nan_step"].skipped and result["nan_step_kept_weights"]
    assert result["resumed_losses"] == result["losses"][conformance.CKPT_AFTER:]
    # the allocator's peak while streaming: a bucket plus gather buffers, far from a second copy of the model
    assert result["peak_device_extra_bytes"] <= 4 * max(conformance.BUCKET_BYTES, result["largest_bytes"])
    assert result["peak_device_extra_bytes"] < result["model_bytes"] / 4


def test_fsdp2_bf16_on_cuda(small_model_path, tmp_path):
    reference = conformance.reference_run(small_model_path, device="cuda")
    [result] = conformance.spawn_run("fsdp2", [FSDPConfig(reshard_after_forward=False)], small_model_path,
                                     str(tmp_path), world=min(2, torch.cuda.device_count()), bf16=True)
    assert all(math.isfinite(loss) for loss in result["losses"])
    assert result["losses"][0] == pytest.approx(reference["losses"][0], rel=2e-2)  # bf16 compute, fp32 reduce
