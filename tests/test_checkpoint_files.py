"""Checkpoint folders without Ray: atomic writes that survive SIGKILL and a full disk, pruning, resume selection,
damaged files, metrics truncation."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import DiskWriteError, UserError
from skyrl_core.trainer import checkpoint
from skyrl_core.trainer.checkpoint import (
    CheckpointWriter,
    find_resume_point,
    read_checkpoint,
    resume_note,
    truncate_metrics,
)


def _config(root, **trainer) -> SkyRLConfig:
    config = SkyRLConfig()
    config.trainer.ckpt_path = str(root)
    for key, value in trainer.items():
        setattr(config.trainer, key, value)
    return config


def _save(writer: CheckpointWriter, step: int) -> None:
    def workers(folder: str) -> None:
        from safetensors.torch import save_file

        save_file({"w": torch.full((4,), float(step))}, f"{folder}/model.safetensors")

    writer.save(step, {"dataloader": {"epoch": 0, "position": step}}, workers)


def test_latest_names_the_newest_complete_checkpoint_and_pruning_keeps_the_newest(tmp_path):
    config = _config(tmp_path, max_ckpts_to_keep=2)
    writer = CheckpointWriter(config, tmp_path, "trainer: {}\n")
    for step in (1, 2, 3):
        _save(writer, step)
    assert (tmp_path / "latest").read_text() == "global_step_3"
    assert sorted(p.name for p in tmp_path.glob("global_step_*")) == ["global_step_2", "global_step_3"]
    point = find_resume_point(config, tmp_path)
    assert point.global_step == 3 and point.state["dataloader"]["position"] == 3


def test_a_run_killed_while_writing_resumes_from_the_previous_checkpoint(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, torch
        from safetensors.torch import save_file
        from skyrl_core.config.schema import SkyRLConfig
        from skyrl_core.trainer.checkpoint import CheckpointWriter
        config = SkyRLConfig(); config.trainer.ckpt_path = {str(tmp_path)!r}
        writer = CheckpointWriter(config, None, "")
        def complete(folder): save_file({{"w": torch.ones(2)}}, folder + "/model.safetensors")
        def killed(folder):
            save_file({{"w": torch.ones(2)}}, folder + "/model.safetensors")
            os.kill(os.getpid(), signal.SIGKILL)
        writer.save(1, {{}}, complete)
        writer.save(2, {{}}, killed)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr
    assert (tmp_path / ".tmp_global_step_2").is_dir()  # the partial checkpoint is there ...
    point = find_resume_point(_config(tmp_path), tmp_path)
    assert point.folder.name == "global_step_1"  # ... and never picked up
    _save(CheckpointWriter(_config(tmp_path), tmp_path, ""), 2)  # the next save clears it away
    assert not (tmp_path / ".tmp_global_step_2").exists()


@pytest.mark.parametrize("damage", ["truncate_weights", "truncate_state", "garbage_optimizer"])
def test_a_damaged_checkpoint_file_is_a_user_error_naming_it(tmp_path, damage):
    writer = CheckpointWriter(_config(tmp_path), tmp_path, "")

    def workers(folder: str) -> None:
        from safetensors.torch import save_file

        save_file({"w": torch.ones(64)}, f"{folder}/model.safetensors")
        torch.save({"optimizer": {"state": {}}}, f"{folder}/optimizer.pt")

    folder = writer.save(5, {}, workers)
    target = {"truncate_weights": "model.safetensors", "truncate_state": "trainer_state.json",
              "garbage_optimizer": "optimizer.pt"}[damage]
    path = folder / target
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage.startswith("truncate") else b"not a zip file")
    with pytest.raises(UserError, match=target):
        read_checkpoint(folder)


def test_resume_modes(tmp_path):
    assert find_resume_point(_config(tmp_path), tmp_path) is None  # latest, but nothing saved yet
    _save(CheckpointWriter(_config(tmp_path), tmp_path, ""), 4)
    assert find_resume_point(_config(tmp_path, resume_mode="none"), tmp_path) is None
    config = _config(tmp_path, resume_mode="from_path", resume_path=str(tmp_path / "global_step_4"))
    assert find_resume_point(config, tmp_path).global_step == 4
    with pytest.raises(UserError, match="does not exist"):
        find_resume_point(_config(tmp_path, resume_mode="from_path", resume_path=str(tmp_path / "x")), tmp_path)


def test_metrics_logged_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    rows = [{"step": s, "reward/mean": s / 10} for s in (0, 1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "rew')
    assert truncate_metrics(tmp_path, 2) == 2
    kept = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == [0, 1, 2]


def _enospc():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _from_worker(folder: str) -> None:
    """A worker that wrote part of its files when the disk filled up, as the driver sees it through Ray."""
    from ray.exceptions import RayTaskError

    (Path(folder) / "policy").mkdir()
    (Path(folder) / "policy" / "model.safetensors").write_bytes(b"\0" * 100)
    raise RayTaskError("TrainWorker.save_checkpoint", "Traceback ...", _enospc()).as_instanceof_cause()


def _on_driver(folder: str) -> None:
    raise _enospc()


def _torch_style(folder: str) -> None:  # torch.save reports a full disk as a RuntimeError without errno
    raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0: file write failed")


@pytest.mark.parametrize("fail", [_from_worker, _on_driver, _torch_style])
def test_a_full_disk_keeps_the_previous_checkpoint_and_names_the_folder(tmp_path, monkeypatch, fail):
    config = _config(tmp_path)
    writer = CheckpointWriter(config, tmp_path, "trainer: {}\n")
    _save(writer, 1)
    if fail is _torch_style:
        monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))
    with pytest.raises(DiskWriteError) as info:
        writer.save(2, {"dataloader": {"epoch": 0, "position": 2}}, fail)
    message = str(info.value)
    assert f"cannot write the checkpoint of step 2 to {tmp_path / 'global_step_2'} (No space left on device)" in message
    assert "trainer.ckpt_path" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["global_step_1", "latest"]  # no .tmp_ left behind
    point = find_resume_point(config, tmp_path)  # verifies every file of the checkpoint
    assert point.global_step == 1 and point.state["dataloader"]["position"] == 1
    assert resume_note(tmp_path) == (f"the last complete checkpoint, {tmp_path / 'global_step_1'}, and the metrics "
                                     "written so far are intact: run the same command again to continue from it")


def test_a_full_disk_while_replacing_latest_keeps_latest_on_the_previous_checkpoint(tmp_path, monkeypatch):
    config = _config(tmp_path)
    writer = CheckpointWriter(config, tmp_path, "")
    _save(writer, 1)
    write = checkpoint._write_synced

    def full_at_latest(path, text):
        if path.name == ".latest.tmp":
            path.write_text(text[:3])
            raise _enospc()
        write(path, text)

    monkeypatch.setattr(checkpoint, "_write_synced", full_at_latest)
    with pytest.raises(DiskWriteError, match="step 2"):
        _save(writer, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["global_step_1", "latest"]
    assert find_resume_point(config, tmp_path).global_step == 1


def test_other_failures_while_saving_are_not_called_a_full_disk(tmp_path):
    writer = CheckpointWriter(_config(tmp_path), tmp_path, "")

    def broken(folder):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        writer.save(1, {}, broken)
    assert not list(tmp_path.glob(".tmp_*"))
