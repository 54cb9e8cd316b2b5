"""``benchmarks/gpu_components.py`` stays runnable on a CPU machine: without CUDA every check says SKIP (never FAIL,
never a crash), a failing check makes the exit status 1, and the code each GPU check runs works on CPU (gloo
weight transfer, fsdp2 on 2 processes, the ``hf`` engine against transformers' ``generate``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_components  # noqa: E402 - from benchmarks/, put on the path above


def test_without_cuda_every_check_is_skipped():
    run = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_components.py")], capture_output=True, text=True,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for name in gpu_components.CHECKS:
        [line] = [line for line in lines if line.split()[1:2] == [name]]
        assert line.startswith("SKIP") and line.endswith("no CUDA device"), line
    assert lines[-1] == f"summary: {len(gpu_components.CHECKS)} checks, 0 PASS, 0 FAIL, 4 SKIP"


def test_a_failing_check_fails_the_run(monkeypatch, capsys):
    def broken() -> str:
        raise RuntimeError("device lost")

    def absent() -> str:
        raise gpu_components.Skip("not here")

    monkeypatch.setitem(gpu_components.CHECKS, "broken", broken)
    monkeypatch.setitem(gpu_components.CHECKS, "absent", absent)
    assert gpu_components.main(["broken", "absent"]) == 1
    out = capsys.readouterr().out
    assert "FAIL broken" in out and "RuntimeError: device lost" in out
    assert "summary: 2 checks, 0 PASS, 1 FAIL, 1 SKIP" in out
    with pytest.raises(SystemExit):
        gpu_components.main(["no_such_check"])


def test_weight_transfer_harness_is_bit_exact_over_gloo():
    assert gpu_components.run_transfer("gloo", ("cpu", "cpu")) == "gloo cpu -> cpu: 10 tensors bit-identical"


def test_strategy_and_hf_checks_pass_on_cpu():
    assert gpu_components.run_strategy("fsdp2", 2, bf16=False, device="cpu").startswith(
        "2 rank(s) on cpu, fp32, loss")
    assert gpu_components.run_hf_generate("cpu").endswith("first equal to transformers' generate")
