"""Checkpoints of a run and resuming from them.

Layout, under ``trainer.ckpt_path`` (default ``<run folder>/ckpts``)::

    global_step_<N>/
        policy/              the strategy's files (ddp: model.safetensors, optimizer.pt; sharded strategies:
                             their shards)
        rng/<role>_rank_<r>.pt   each training worker's random streams
        trainer_state.json   global step, dataloader cursor, the driver's random streams, algorithm state
        config.yaml          the resolved run config (secrets redacted)
    latest                   the name of the newest complete checkpoint folder

Atomicity: a checkpoint is written into ``.tmp_global_step_<N>``, renamed to ``global_step_<N>`` when every file
is complete, and only then is ``latest`` replaced (write-then-rename). Old checkpoints beyond
``trainer.max_ckpts_to_keep`` are deleted only after that. A run killed while writing leaves a ``.tmp_`` folder
that is never picked up (and is removed by the next save). A write that fails (a full disk: ENOSPC, whether the
driver or a worker hits it) removes the ``.tmp_`` folder and stops the run with a :class:`DiskWriteError` naming
the folder; ``latest`` still names the previous complete checkpoint.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import attrs
import yaml

from skyrl_core.errors import DiskWriteError, UserError

log = logging.getLogger("skyrl")
STATE_FILE = "trainer_state.json"
LATEST = "latest"
PREFIX = "global_step_"
#: Below this many free bytes, a failed write is taken for a full disk (torch and safetensors report one as their
#: own RuntimeError, without the OSError).
FULL_BELOW = 1 << 20
#: Settings that make an exact continuation impossible when they change between the saved and the resumed run.
EXACT_RESUME_KEYS = ("trainer.seed", "trainer.train_batch_size", "trainer.policy_mini_batch_size",
                     "trainer.policy.model.path", "generator.n_samples_per_prompt",
                     "trainer.algorithm.advantage_estimator")


@attrs.frozen
class ResumePoint:
    """A complete checkpoint to continue from."""

    folder: Path
    state: dict[str, Any]

    @property
    def global_step(self) -> int:
        return int(self.state["global_step"])


def checkpoint_root(config: Any, run_dir: Path) -> Path:
    return Path(config.trainer.ckpt_path).expanduser() if config.trainer.ckpt_path else run_dir / "ckpts"


def find_resume_point(config: Any, run_dir: Path) -> ResumePoint | None:
    """The checkpoint ``trainer.resume_mode`` selects, or None to start fresh."""
    trainer = config.trainer
    if trainer.resume_mode == "none":
        return None
    if trainer.resume_mode == "from_path":
        if not trainer.resume_path:
            raise UserError("trainer.resume_mode=from_path needs trainer.resume_path=<checkpoint folder>")
        return read_checkpoint(Path(trainer.resume_path).expanduser())
    root = checkpoint_root(config, run_dir)
    latest = root / LATEST
    if not latest.is_file():
        return None
    name = latest.read_text().strip()
    if not name.startswith(PREFIX) or not (root / name).is_dir():
        raise UserError(f"{latest} names '{name}', which is not a checkpoint folder in {root}. Fix or delete "
                        f"{latest}, or resume from a folder with trainer.resume_mode=from_path")
    return read_checkpoint(root / name)


def read_checkpoint(folder: Path) -> ResumePoint:
    """A complete checkpoint folder's trainer state; an incomplete or damaged one is a :class:`UserError`."""
    path = folder / STATE_FILE
    if not folder.is_dir():
        raise UserError(f"checkpoint folder {folder} does not exist; check trainer.resume_path")
    if not path.is_file():
        raise UserError(f"{folder} is not a complete checkpoint: {STATE_FILE} is missing. Resume from another "
                        "checkpoint (trainer.resume_mode=from_path trainer.resume_path=...)")
    try:
        state = json.loads(path.read_text())
        int(state["global_step"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"checkpoint file {path} is corrupt or truncated ({exc}). Resume from another "
                        "checkpoint (trainer.resume_mode=from_path trainer.resume_path=...)") from None
    verify_files(folder)
    return ResumePoint(folder=folder, state=state)


def verify_files(folder: Path) -> None:
    """Check every weight and state file of a checkpoint without loading it: a safetensors file must be as long
    as its header says, a torch (zip) file must have an intact central directory. A damaged file is a
    :class:`UserError` naming it, raised before any worker starts."""
    import zipfile

    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        problem = None
        if path.suffix == ".safetensors":
            problem = _safetensors_problem(path)
        elif path.suffix == ".pt":
            try:
                with zipfile.ZipFile(path) as archive:
                    archive.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                problem = str(exc)
        if problem:
            raise UserError(f"checkpoint file {path} is corrupt or truncated ({problem}). Resume from another "
                            "checkpoint (trainer.resume_mode=from_path trainer.resume_path=...)")


def _safetensors_problem(path: Path) -> str | None:
    """safetensors layout: an 8-byte little-endian header length, a JSON header giving each tensor's
    ``data_offsets`` into the data that follows."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "shorter than its header"
        length = int.from_bytes(head, "little")
        if 8 + length > size:
            return "header cut off"
        try:
            header = json.loads(f.read(length))
        except ValueError:
            return "unreadable header"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end != size:
        return f"{size} bytes where the header describes {8 + length + end}"
    return None


def warn_on_changed_settings(point: ResumePoint, config_dict: dict[str, Any]) -> None:
    """One warning line naming every setting that differs from the checkpoint's and makes resume inexact."""
    saved_path = point.folder / "config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    changed = []
    for key in EXACT_RESUME_KEYS:
        old, new = _lookup(saved, key), _lookup(config_dict, key)
        if old != new:
            changed.append(f"{key} {old!r} -> {new!r}")
    if changed:
        log.warning("resuming with changed settings, so the run will not continue exactly as it would have: %s",
                    "; ".join(changed))


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def driver_rng_state() -> dict[str, Any]:
    import torch

    return {"python": python_rng_state(), "torch": torch.get_rng_state().tolist()}


def set_driver_rng_state(state: dict[str, Any]) -> None:
    import torch

    set_python_rng_state(state["python"])
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def python_rng_state() -> list[Any]:
    """``random.getstate()`` as nested lists (JSON and ``torch.load(weights_only=True)`` both take them)."""
    return _lists(random.getstate())


def set_python_rng_state(state: list[Any]) -> None:
    random.setstate(_tuples(state))


def _lists(value: Any) -> Any:
    return [_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


class CheckpointWriter:
    """Writes checkpoints atomically and prunes old ones (see the module doc)."""

    def __init__(self, config: Any, run_dir: Path, config_yaml: str):
        self.root = checkpoint_root(config, run_dir)
        self.keep = config.trainer.max_ckpts_to_keep
        self.config_yaml = config_yaml

    def save(self, global_step: int, state: dict[str, Any], save_workers: Any) -> Path:
        """``save_workers(folder)`` makes every worker group write its files; ``state`` is the driver's part."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".tmp_{PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        final = self.root / f"{PREFIX}{global_step}"
        tmp = self.root / f".tmp_{PREFIX}{global_step}"
        moved = False
        try:
            tmp.mkdir()
            save_workers(str(tmp))
            (tmp / "config.yaml").write_text(self.config_yaml)
            _write_synced(tmp / STATE_FILE, json.dumps({"global_step": global_step, **state}))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            moved = True
            _write_synced(self.root / f".{LATEST}.tmp", final.name)
            os.replace(self.root / f".{LATEST}.tmp", self.root / LATEST)
        except Exception as exc:
            problem = write_problem(exc, self.root)
            shutil.rmtree(final if moved else tmp, ignore_errors=True)  # latest names the previous one
            (self.root / f".{LATEST}.tmp").unlink(missing_ok=True)
            if problem is None:
                raise
            raise DiskWriteError(f"cannot write the checkpoint of step {global_step} to {final} ({problem}); its "
                                 f"partial files were removed. Free disk space there, or set trainer.ckpt_path to "
                                 "another disk") from None
        self._prune()
        return final

    def _prune(self) -> None:
        if self.keep is None or self.keep < 0:
            return
        steps = sorted(int(p.name.removeprefix(PREFIX)) for p in self.root.glob(f"{PREFIX}*")
                       if p.name.removeprefix(PREFIX).isdigit())
        for step in steps[: max(0, len(steps) - max(1, self.keep))]:
            shutil.rmtree(self.root / f"{PREFIX}{step}", ignore_errors=True)


def write_problem(exc: BaseException, folder: Path) -> str | None:
    """What went wrong when writing into ``folder`` failed because of the disk, else None: the OSError's text
    (raised here or, as the cause of a Ray task error, in a worker), or "no space left on device" when the disk
    under ``folder`` now has less than :data:`FULL_BELOW` free."""
    for error in (getattr(exc, "cause", None), exc):  # ray.exceptions.RayTaskError carries the worker's exception
        if isinstance(error, OSError) and error.errno is not None:
            return error.strerror or errno.errorcode.get(error.errno, str(error))
    try:
        full = shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return None
    return os.strerror(errno.ENOSPC) if full else None


def resume_note(root: Path | None) -> str:
    """How to continue a run that stopped: from the checkpoint ``latest`` names under ``root``, if any."""
    latest = root / LATEST if root is not None else None
    if latest is not None and latest.is_file():
        return (f"the last complete checkpoint, {root / latest.read_text().strip()}, and the metrics written so far "
                "are intact: run the same command again to continue from it")
    return "no checkpoint was written yet; the metrics written so far are intact"


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def truncate_metrics(run_dir: Path, last_step: int) -> int:
    """Drop ``metrics.jsonl`` rows logged after ``last_step`` (written after the checkpoint a run resumes from),
    so the resumed run appends without duplicates; returns how many rows were dropped."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            step = json.loads(line).get("step", 0)
        except json.JSONDecodeError:  # a line cut by a crash
            dropped += 1
            continue
        if step > last_step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        _write_synced(path.with_suffix(".jsonl.tmp"), "".join(line + "\n" for line in kept))
        os.replace(path.with_suffix(".jsonl.tmp"), path)
    return dropped
