"""deepspeed ZeRO 1, 2, 3 on 2 CPU processes (gloo) against plain PyTorch: losses, norms, weights, resume."""

from __future__ import annotations

import math

import pytest
import strategy_conformance as conformance
from skyrl_deepspeed.config import DeepSpeedConfig

STAGES = (1, 2, 3)


@pytest.fixture(scope="module")
def results(tiny_model_path, tmp_path_factory):
    reference = conformance.reference_run(str(tiny_model_path))
    sections = [DeepSpeedConfig(deepspeed_config={"zero_optimization": {"stage": stage}}) for stage in STAGES]
    runs = conformance.spawn_run("deepspeed", sections, str(tiny_model_path),
                                 str(tmp_path_factory.mktemp("deepspeed")))
    return reference, dict(zip(STAGES, runs))


@pytest.mark.parametrize("stage", STAGES)
def test_zero_matches_plain_torch(stage, results):
    reference, runs = results
    conformance.assert_matches_reference(runs[stage], reference)
    assert any(norm > conformance.MAX_NORM for norm in reference["grad_norms"]), "the steps must exercise clipping"


@pytest.mark.parametrize("stage", STAGES)
def test_zero_streams_weights_one_bucket_at_a_time(stage, results):
    result = results[1][stage]
    assert result["peak_alive_bytes"] <= max(conformance.BUCKET_BYTES, result["largest_bytes"])
    assert result["peak_alive_bytes"] < result["model_bytes"] / 4


@pytest.mark.parametrize("stage", STAGES)
def test_zero_skips_non_finite_gradients(stage, results):
    result = results[1][stage]
    assert result["nan_step"].skipped and not math.isfinite(result["nan_step"].grad_norm)
    assert result["nan_step_kept_weights"]


@pytest.mark.parametrize("stage", STAGES)
def test_zero_resume_is_exact(stage, results):
    result = results[1][stage]
    assert result["resumed_lr"] == pytest.approx(conformance.optimizer_config().lr)
    assert result["resumed_losses"] == result["losses"][conformance.CKPT_AFTER:]
    for name, tensor in result["weights"].items():
        assert (result["resumed_weights"][name] == tensor).all(), name
