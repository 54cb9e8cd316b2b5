"""deepspeed ZeRO 1, 2, 3 (and 3 with CPU offload) on 2 CPU processes (gloo) against plain PyTorch: losses,
gradient norms, weights, streaming, skipped steps, resume."""

from __future__ import annotations

import math

import pytest
from harness_path import load_conformance_harness

from skyrl_deepspeed.config import DeepSpeedConfig

conformance = load_conformance_harness()

#: ZeRO 1, 2, 3, and ZeRO 3 with parameters and optimizer state offloaded to CPU memory (torch AdamW steps there).
SECTIONS = {
    "zero1": {"stage": 1},
    "zero2": {"stage": 2},
    "zero3": {"stage": 3},
    "zero3-offload": {"stage": 3, "offload_param": {"device": "cpu"}, "offload_optimizer": {"device": "cpu"}},
}


@pytest.fixture(scope="module")
def results(tiny_model_path, tmp_path_factory):
    reference = conformance.reference_run(str(tiny_model_path))
    sections = [DeepSpeedConfig(deepspeed_config={"zero_optimization": zero}) for zero in SECTIONS.values()]
    runs = conformance.spawn_run("deepspeed", sections, str(tiny_model_path),
                                 str(tmp_path_factory.mktemp("deepspeed")))
    return reference, dict(zip(SECTIONS, runs))


@pytest.mark.parametrize("zero", list(SECTIONS))
def test_zero_matches_plain_torch(zero, results):
    reference, runs = results
    conformance.assert_matches_reference(runs[zero], reference)
    assert any(norm > conformance.MAX_NORM for norm in reference["grad_norms"]), "the steps must exercise clipping"


@pytest.mark.parametrize("zero", list(SECTIONS))
def test_zero_streams_weights_one_bucket_at_a_time(zero, results):
    result = results[1][zero]
    assert result["peak_alive_bytes"] <= max(conformance.BUCKET_BYTES, result["largest_bytes"])
    assert result["peak_alive_bytes"] < result["model_bytes"] / 4


@pytest.mark.parametrize("zero", list(SECTIONS))
def test_zero_skips_non_finite_gradients(zero, results):
    result = results[1][zero]
    assert result["nan_step"].skipped and not math.isfinite(result["nan_step"].grad_norm)
    assert result["nan_step_kept_weights"]


@pytest.mark.parametrize("zero", list(SECTIONS))
def test_zero_resume_is_exact(zero, results):
    result = results[1][zero]
    assert result["resumed_lr"] == pytest.approx(conformance.optimizer_config().lr)
    assert result["resumed_losses"] == result["losses"][conformance.CKPT_AFTER:]
    for name, tensor in result["weights"].items():
        assert (result["resumed_weights"][name] == tensor).all(), name
