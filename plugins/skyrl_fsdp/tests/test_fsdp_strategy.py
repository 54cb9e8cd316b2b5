"""fsdp2 on 2 CPU processes (gloo) against plain PyTorch: losses, gradient norms, weights, streaming, resume."""

from __future__ import annotations

import math

import pytest
import strategy_conformance as conformance

from skyrl_fsdp.config import FSDPConfig

#: One 2-D mesh (hybrid: each rank a full shard group of one, replicated twice) and the default 1-D mesh.
SECTIONS = {"sharded": FSDPConfig(), "hybrid": FSDPConfig(fsdp_size=1, reshard_after_forward=False)}


@pytest.fixture(scope="module")
def results(tiny_model_path, tmp_path_factory):
    reference = conformance.reference_run(str(tiny_model_path))
    runs = conformance.spawn_run("fsdp2", list(SECTIONS.values()), str(tiny_model_path),
                                 str(tmp_path_factory.mktemp("fsdp2")))
    return reference, dict(zip(SECTIONS, runs))


@pytest.mark.parametrize("layout", list(SECTIONS))
def test_fsdp2_matches_plain_torch(layout, results):
    reference, runs = results
    result = runs[layout]
    conformance.assert_matches_reference(result, reference)
    assert any(norm > conformance.MAX_NORM for norm in reference["grad_norms"]), "the steps must exercise clipping"


@pytest.mark.parametrize("layout", list(SECTIONS))
def test_fsdp2_streams_weights_one_bucket_at_a_time(layout, results):
    result = results[1][layout]
    assert result["peak_alive_bytes"] <= max(conformance.BUCKET_BYTES, result["largest_bytes"])
    assert result["peak_alive_bytes"] < result["model_bytes"] / 4


@pytest.mark.parametrize("layout", list(SECTIONS))
def test_fsdp2_skips_non_finite_gradients(layout, results):
    result = results[1][layout]
    assert result["nan_step"].skipped and not math.isfinite(result["nan_step"].grad_norm)
    assert result["nan_step_kept_weights"]


@pytest.mark.parametrize("layout", list(SECTIONS))
def test_fsdp2_resume_is_exact(layout, results):
    result = results[1][layout]
    assert result["resumed_lr"] == pytest.approx(conformance.optimizer_config().lr)  # warm-up done after 2 steps
    assert result["resumed_losses"] == result["losses"][conformance.CKPT_AFTER:]
    for name, tensor in result["weights"].items():
        assert (result["resumed_weights"][name] == tensor).all(), name
