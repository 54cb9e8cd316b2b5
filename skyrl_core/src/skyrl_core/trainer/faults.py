"""Naming a worker or engine that died: which actor (role, rank or index, process id), the cause Ray reports and
the last lines of its log, and how to continue from the last complete checkpoint. Exit status 1."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

from skyrl_core.errors import SkyrlError
from skyrl_core.trainer.checkpoint import resume_note

#: Log lines of the dead actor shown in the message.
TAIL_LINES = 12


class WorkerDied(SkyrlError):
    """An actor of the run died (killed, out of memory, crashed); the run stopped. Exit status 1."""


class ActorDirectory:
    """Who every actor of a run is: actor id -> (label, pid), and the Ray node id of each label."""

    def __init__(self) -> None:
        self.actors: dict[str, tuple[str, int]] = {}
        self.nodes: dict[str, str] = {}

    def add(self, handles: list[Any], labels: list[str]) -> None:
        import ray

        places = ray.get([handle.locate.remote() for handle in handles])
        for handle, label, (pid, node_id) in zip(handles, labels, places, strict=True):
            self.actors[handle._actor_id.hex()] = (label, pid)
            self.nodes[label] = node_id

    def write(self, path: Path) -> None:
        """``actors.json`` in the run folder: every actor's label, process id and Ray node id (to find its logs, or
        a culprit, on its node)."""
        path.write_text(json.dumps({label: {"pid": pid, "node_id": self.nodes[label]}
                                    for label, pid in self.actors.values()}, indent=1))

    def describe(self, error: Any, ckpt_root: Path | None) -> WorkerDied:
        """A :class:`WorkerDied` for ``error`` (a ``ray.exceptions.RayActorError``)."""
        label, pid = self.actors.get(getattr(error, "actor_id", None) or "", ("an actor of the run", 0))
        cause = str(error).strip().splitlines()
        lines = [f"{label} (pid {pid}) died: {cause[0] if cause else 'no cause reported'}"]
        if getattr(error, "preempted", False):
            lines.append("its node was preempted")
        tail = _log_tail(pid) if pid else []
        if tail:
            lines.append("last lines of its log:")
            lines += [f"  | {line}" for line in tail]
        lines.append(resume_note(ckpt_root))
        return WorkerDied("\n".join(lines))


def _worker_log_files(pid: int) -> list[str]:
    """The Ray worker log files (stderr, stdout) of process ``pid`` in the current Ray session."""
    try:
        import ray

        session = ray._private.worker._global_node.get_session_dir_path()  # noqa: SLF001 - no public API
    except Exception:  # noqa: BLE001 - no session, no logs
        return []
    return sorted(glob.glob(os.path.join(session, "logs", f"worker-*-{pid}.*")))


def _read_lines(path: str) -> list[str]:
    try:
        return [line for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []


def _log_tail(pid: int) -> list[str]:
    """The last lines of the Ray worker logs of process ``pid`` (stderr first)."""
    return [line for path in _worker_log_files(pid) for line in _read_lines(path)][-TAIL_LINES:]


def copy_actor_logs(directory: ActorDirectory, folder: Path) -> None:
    """Every actor's output (stderr, then stdout) into ``folder/<label>.log``, e.g. ``policy_worker_rank_0.log``;
    the console shows only skyrl's own lines unless ``--verbose``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for label, pid in directory.actors.values():
            lines = [line for path in _worker_log_files(pid) for line in _read_lines(path)]
            (folder / f"{label.replace(' ', '_')}.log").write_text("".join(line + "\n" for line in lines))
    except OSError:  # a full disk: the run's own error says so; the logs stay in Ray's session folder
        return
