"""The SGLang engine on a real GPU: skyrl's engine conformance suite. Never run yet (see the README).

The receiver lives in the engine actor's process (here: this test process), so the suite's in-process test
transport works unchanged.
"""

from __future__ import annotations

import pytest

from skyrl_core.testing.engine_conformance import EngineConformance

pytestmark = pytest.mark.gpu
pytest.importorskip("sglang")

from skyrl_sglang.engine import SGLangEngine  # noqa: E402


class TestSGLangConformance(EngineConformance):
    engine_cls = SGLangEngine
    logprob_atol = 1e-3

    @classmethod
    def build_engine(cls, model_path: str, seed: int = 0) -> SGLangEngine:
        return SGLangEngine(model_path=model_path, dtype="float32", seed=seed, tensor_parallel_size=1,
                            gpu_memory_utilization=0.2, max_num_seqs=64, max_num_batched_tokens=2048)
