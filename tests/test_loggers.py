"""Metric sinks: metrics.jsonl always written, fan-out that survives a failing sink, wandb/tensorboard/console."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from skyrl_core.errors import UnknownNameError, UserError
from skyrl_core.loggers import (
    ConsoleLogger,
    JsonlLogger,
    Logger,
    MultiLogger,
    TensorboardLogger,
    WandbLogger,
    make_loggers,
    write_samples,
)
from skyrl_core.plugins import PluginManager


@pytest.fixture(scope="module")
def registry():
    return PluginManager().registry("loggers")


def _make(names, registry, run_dir: Path, **kw: Any) -> MultiLogger:
    return make_loggers(names, registry=registry, run_dir=run_dir, project_name="proj", run_name="run",
                        config=kw.pop("config", {"trainer": {"logger": names}}), sections=kw.pop("sections", {}))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _kwargs(tmp_path: Path) -> dict[str, Any]:
    return dict(run_dir=tmp_path, project_name="proj", run_name="run", config={})


def test_builtins_registered(registry):
    assert {"console", "jsonl", "wandb", "tensorboard"} <= set(registry)
    assert registry["jsonl"] is JsonlLogger


def test_jsonl_one_object_per_step(tmp_path):
    sink = JsonlLogger(**_kwargs(tmp_path))
    sink.log({"reward/mean": 0.5, "loss/policy": np.float32(0.25), "grad_norm": torch.tensor(2.0),
              "count": np.int64(7), "bad": float("nan"), "big": float("inf")}, step=1)
    sink.log({"reward/mean": 0.75, "note": "text", "vec": np.zeros(3)}, step=2)
    rows = _read_jsonl(tmp_path / "metrics.jsonl")  # readable before finish: flushed per line
    sink.finish()
    assert rows == [
        {"step": 1, "reward/mean": 0.5, "loss/policy": 0.25, "grad_norm": 2.0, "count": 7, "bad": None,
         "big": None},
        {"step": 2, "reward/mean": 0.75, "note": "text"},
    ]
    assert "NaN" not in (tmp_path / "metrics.jsonl").read_text()


def test_jsonl_appends_across_restarts(tmp_path):
    for step in (1, 2):
        sink = JsonlLogger(**_kwargs(tmp_path))
        sink.log({"x": step}, step=step)
        sink.finish()
    assert [r["step"] for r in _read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2]


def test_jsonl_always_present_with_console_only(tmp_path, registry):
    loggers = _make("console", registry, tmp_path)
    assert loggers.names == ["jsonl", "console"]
    loggers.log({"reward/mean": 1.0}, step=3)
    loggers.finish()
    assert _read_jsonl(tmp_path / "metrics.jsonl") == [{"step": 3, "reward/mean": 1.0}]


def test_multiple_names_in_order_deduplicated(tmp_path, registry, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    loggers = _make(["console", "tensorboard", "jsonl", "console"], registry, tmp_path)
    assert loggers.names == ["jsonl", "console", "tensorboard"]
    assert isinstance(loggers["tensorboard"], TensorboardLogger)
    loggers.finish()
    loggers.finish()  # idempotent


def test_unknown_name_through_real_registry(tmp_path, registry):
    run_dir = tmp_path / "run"
    with pytest.raises(UnknownNameError) as info:
        _make(["console", "tensorbord"], registry, run_dir)
    message = str(info.value)
    assert "tensorbord" in message and "did you mean 'tensorboard'" in message and "console" in message
    assert not run_dir.exists()  # names are checked before any sink starts


class _Boom(Logger):
    calls = 0

    def log(self, metrics, step):
        type(self).calls += 1
        raise RuntimeError("sink is down")

    def log_samples(self, samples, step):
        raise RuntimeError("sink is down")

    def finish(self):
        raise RuntimeError("sink is down")


def test_failing_sink_does_not_stop_the_others(tmp_path, registry, caplog):
    sinks = {"jsonl": JsonlLogger, "boom": _Boom, "console": ConsoleLogger}
    loggers = _make(["boom", "console"], sinks, tmp_path)
    with caplog.at_level(logging.ERROR, logger="skyrl.loggers"):
        for step in (1, 2, 3):
            loggers.log({"reward/mean": 0.1 * step}, step=step)
        loggers.log_samples([{"prompt": "p", "response": "r", "reward": 1.0}], step=3)
        loggers.finish()
    assert _Boom.calls == 3
    assert [r["step"] for r in _read_jsonl(tmp_path / "metrics.jsonl")] == [1, 2, 3]
    assert (tmp_path / "samples" / "step_3.jsonl").exists()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "boom" in errors[0].getMessage()
    assert loggers.failures == {"boom": 5}


def test_sink_that_cannot_start_is_a_user_error(tmp_path, registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(UserError) as info:
        _make(["console", "wandb"], registry, tmp_path)
    message = str(info.value)
    assert "trainer.logger 'wandb'" in message and "pip install wandb" in message
    assert "choose another trainer.logger" in message


def test_config_is_redacted_before_sinks_see_it(tmp_path):
    seen = {}

    class Spy(Logger):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            seen.update(config=self.config, section=self.section)

        def log(self, metrics, step):
            pass

    config = {"trainer": {"api_key": "sk-123", "lr": 1e-6}}
    _make("spy", {"jsonl": JsonlLogger, "spy": Spy}, tmp_path, config=config, sections={"spy": "S"}).finish()
    assert seen == {"config": {"trainer": {"api_key": "***", "lr": 1e-6}}, "section": "S"}


@pytest.mark.parametrize("mode", ["disabled", "offline"])
def test_wandb(tmp_path, registry, monkeypatch, mode):
    monkeypatch.setenv("WANDB_MODE", mode)
    monkeypatch.setenv("WANDB_SILENT", "true")
    start = time.monotonic()
    loggers = _make(["wandb"], registry, tmp_path)
    assert isinstance(loggers["wandb"], WandbLogger)
    loggers.log({"reward/mean": 0.5, "loss/policy": np.float64(0.1), "x": float("nan")}, step=1)
    loggers.log_samples([{"prompt": "p", "response": "r", "reward": 1.0, "meta": {"a": [1, 2]}}], step=1)
    loggers.log({"reward/mean": 0.6}, step=2)
    loggers.finish()
    assert loggers.failures == {}
    assert time.monotonic() - start < 30, "wandb init/log/finish is unexpectedly slow"
    if mode == "offline":
        assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_tensorboard_writes_event_file(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorboardLogger(**_kwargs(tmp_path))
    sink.log({"reward/mean": 0.5, "note": "ignored"}, step=1)
    sink.log({"reward/mean": torch.tensor(0.75)}, step=2)
    sink.log_samples([{"prompt": "p", "response": "r"}], step=2)
    sink.finish()
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("reward/mean")] == [(1, 0.5), (2, 0.75)]


def test_write_samples(tmp_path):
    samples = [
        {"prompt": [{"role": "user", "content": "2*3?"}], "response": "6", "reward": np.float32(1.0),
         "env_class": "multiply", "stop_reason": "stop"},
        {"prompt": "héllo", "response": "", "reward": float("nan"), "env_class": "multiply",
         "stop_reason": "length", "ids": torch.tensor([1, 2])},
    ]
    path = write_samples(tmp_path, 4, samples)
    assert path == tmp_path / "samples" / "step_4.jsonl"
    assert _read_jsonl(path) == [
        {"prompt": [{"role": "user", "content": "2*3?"}], "response": "6", "reward": 1.0,
         "env_class": "multiply", "stop_reason": "stop"},
        {"prompt": "héllo", "response": "", "reward": None, "env_class": "multiply", "stop_reason": "length",
         "ids": [1, 2]},
    ]
    write_samples(tmp_path, 4, samples[:1])  # rewriting a step replaces the file
    assert len(_read_jsonl(path)) == 1
    assert not list(path.parent.glob("*.tmp"))


def test_console_line(tmp_path):
    console = Console(record=True, width=200)
    sink = ConsoleLogger(console=console, **_kwargs(tmp_path))
    sink.log({"reward/mean": 0.8125, "loss/policy": -0.0123, "timing/step": 1.5,
              "throughput/tokens_per_s": 12345.6, "grad_norm": 3.0}, step=7)
    sink.log({"eval/reward/mean": 0.9, "eval/pass_at_n": 1.0}, step=8)
    sink.log({"reward/mean": float("nan")}, step=9)
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == "step 7 │ reward 0.8125 │ loss -0.0123 │ time 1.5s │ tok/s 12,346"
    assert lines[1] == "eval step 8 │ reward/mean 0.9 │ pass_at_n 1"
    assert lines[2] == "step 9 │ reward nan"
    assert "grad_norm" not in text


def test_console_default_prints_to_stdout(tmp_path, capsys):
    sink = ConsoleLogger(**_kwargs(tmp_path))
    sink.log({"reward/mean": 0.25}, step=1)
    assert "reward 0.25" in capsys.readouterr().out


def test_multilogger_context_manager(tmp_path):
    with MultiLogger({"jsonl": JsonlLogger(**_kwargs(tmp_path))}) as loggers:
        loggers.log({"a": 1.5}, step=0)
    assert loggers["jsonl"]._fd == -1
    assert math.isclose(_read_jsonl(tmp_path / "metrics.jsonl")[0]["a"], 1.5)


def test_optional_libraries_not_imported_until_constructed():
    import subprocess

    code = ("import sys; from skyrl_core.plugins import PluginManager; PluginManager().registry('loggers'); "
            "print(sorted(m for m in ('wandb', 'torch.utils.tensorboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _full_disk_after(limit: int):
    """``os.write`` that writes at most ``limit`` bytes in all, then fails with ENOSPC (a disk that fills up)."""
    import errno
    import os

    real, left = os.write, [limit]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real(fd, data[: left[0]])
        left[0] -= written
        return written

    return write


def test_a_full_disk_ends_the_run_without_a_torn_metrics_line(tmp_path, monkeypatch):
    from skyrl_core.errors import DiskWriteError
    from skyrl_core.loggers import builtin

    loggers = MultiLogger({"jsonl": JsonlLogger(**_kwargs(tmp_path)), "console": ConsoleLogger(**_kwargs(tmp_path))})
    loggers.log({"reward/mean": 0.5}, step=1)
    with monkeypatch.context() as patch:
        patch.setattr(builtin.os, "write", _full_disk_after(10))  # 10 bytes of the next line fit
        with pytest.raises(DiskWriteError) as info:  # not swallowed like other sink failures
            loggers.log({"reward/mean": 0.25, "loss/policy": 1.0}, step=2)
    path = tmp_path / "metrics.jsonl"
    assert str(info.value).startswith(f"cannot write {path} (No space left on device)")
    assert path.read_text() == '{"step": 1, "reward/mean": 0.5}\n'  # the cut line was removed again
    loggers.log({"reward/mean": 0.75}, step=2)  # space again: the file goes on with whole lines
    loggers.finish()
    assert [row["step"] for row in _read_jsonl(path)] == [1, 2]


def test_a_full_disk_while_writing_samples_leaves_no_partial_file(tmp_path, monkeypatch):
    import builtins
    import errno

    from skyrl_core.errors import DiskWriteError

    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[:5])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: Full(real_open(path, *a, **k)))
    with pytest.raises(DiskWriteError, match=r"samples/step_3\.jsonl \(No space left on device\)"):
        write_samples(tmp_path, 3, [{"prompt": "p", "response": "r"}])
    monkeypatch.undo()
    assert list((tmp_path / "samples").iterdir()) == []
