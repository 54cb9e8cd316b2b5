"""Measurements of ``grpo_step_vs_trl.py`` beyond seconds: memory (PSS), the machine's matmul peak, a FLOPs model.

- ``PssMonitor``: every ``interval`` s (1.0), the summed PSS (``/proc/PID/smaps_rollup``) of one side's process
  tree, in total and per group of processes (skyrl: ``driver``, ``TrainWorker``, ``EngineActor``, ``ray daemons``;
  TRL: ``trl``). PSS, not RSS: skyrl's processes all map the same torch libraries, which RSS would count once per
  process. The tree is every descendant of the side's subprocess plus every process in its session (skyrl's run is
  started with ``start_new_session=True``, so the Ray processes it starts are in its session).
- ``matmul_peak``: GFLOP/s of ``torch.mm`` on large square matrices, fp32 and bf16, at the runs' thread count,
  best of a few repetitions.
- ``model_flops``: the FLOPs model of the per-phase report.

FLOPs model (per step; attention score/value products, norms, activations and the optimizer are left out):
    forward = 2 x (non-embedding parameters x tokens + LM-head parameters x positions whose logits are computed).
    Non-embedding parameters: every parameter except the token embedding and the LM head; the LM head is
    vocabulary x hidden whether tied or not (a tied head still costs its matmul). Tokens of a sequence: its
    prompt plus its completion; logit positions: its completion (both sides compute logits on completion positions
    only when training, and one logit per generated token when generating).
    - generation: one forward over prompt + completion tokens of every sample (a sample's prompt is counted even
      where an engine prefills it once per group, so this is the useful work, not the work done);
    - reference / old log-probs: one forward each, when a run reports such a phase;
    - training: 3 x forward (forward + backward);
    - weight sync, reward and other parts: no FLOPs.
    The fraction of the peak is FLOPs / seconds / peak, with the peak of the mode's dtype (fp32 peak for ``equal``,
    bf16 peak for ``best``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

# -- memory -----------------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[1]), int(rest[3])
    except (OSError, IndexError, ValueError):
        return None


def _pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _group(pid: int, root: int, root_name: str) -> str:
    if pid == root:
        return root_name
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "ray daemons"
    if cmd.startswith("ray::") and not cmd.startswith("ray::IDLE"):
        return cmd[5:].split()[0].split(".")[0]  # the actor class: ray::TrainWorker.train_batch -> TrainWorker
    return "ray daemons"


class PssMonitor:
    """Samples the PSS of the process tree under ``root`` (a subprocess pid) until ``stop``."""

    #: Reading ``smaps_rollup`` walks the process's page tables in the kernel: 25-30 ms of CPU for a 135M model's
    #: worker or engine, about 75 ms per sample of skyrl's tree. Every 0.25 s that took a fifth of a core from the
    #: measured job (and stalls its mmap calls while the walk holds the lock); once a second keeps it near 7%, and
    #: a step's memory peak (the training phase) lasts seconds.
    def __init__(self, root: int, root_name: str, interval: float = 1.0):
        self.root, self.root_name, self.interval = root, root_name, interval
        self.samples: list[tuple[float, dict[str, int]]] = []  # (monotonic time, kB per group)
        self.available = Path(f"/proc/{os.getpid()}/smaps_rollup").is_file()
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pss-monitor", daemon=True)

    def start(self) -> PssMonitor:
        if self.available:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _tree(self) -> list[int]:
        stats = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                st = _stat(int(entry.name))
                if st is not None:
                    stats[int(entry.name)] = st
        tree = []
        for pid, (_, sid) in stats.items():
            node, hops = pid, 0
            while node > 1 and hops < 64 and node != self.root:
                node, hops = stats.get(node, (0, 0))[0], hops + 1
            if node == self.root or sid == self.root:
                tree.append(pid)
        return tree

    def _loop(self) -> None:
        while not self._stop.is_set():
            groups: dict[str, int] = {}
            for pid in self._tree():
                kb = _pss_kb(pid)
                if kb is None:
                    continue
                # A Ray worker's title changes with the method it runs; its group is fixed once it is an actor.
                name = self._names.get(pid)
                if name is None or name == "ray daemons":
                    name = self._names[pid] = _group(pid, self.root, self.root_name)
                groups[name] = groups.get(name, 0) + kb
            self.samples.append((time.monotonic(), groups))
            self._stop.wait(self.interval)

    def peaks(self, windows: list[tuple[float, float]]) -> dict[str, float] | None:
        """Peak MB inside ``windows``: ``total`` (the summed tree) and each group's (its members summed)."""
        inside = [g for t, g in self.samples if any(a <= t <= b for a, b in windows)]
        if not inside:
            return None
        peaks: dict[str, float] = {"total": max(sum(g.values()) for g in inside) / 1024}
        for name in sorted({n for g in inside for n in g}):
            peaks[name] = max(g.get(name, 0) for g in inside) / 1024
        return peaks


# -- the machine's matmul peak ----------------------------------------------------------------------------------


def matmul_peak(threads: int, size: int = 2048, reps: int = 5, seconds: float = 0.5) -> dict[str, float]:
    """Best GFLOP/s of ``torch.mm`` (``size`` x ``size``) in fp32 and bf16 with ``threads`` torch threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    found = {}
    try:
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            a = torch.randn(size, size, dtype=dtype)
            b = torch.randn(size, size, dtype=dtype)
            torch.mm(a, b)  # warm-up (oneDNN picks its kernel)
            best = 0.0
            for _ in range(reps):
                n, start = 0, time.perf_counter()
                while True:
                    torch.mm(a, b)
                    n += 1
                    elapsed = time.perf_counter() - start
                    if elapsed >= seconds:
                        break
                best = max(best, 2 * size**3 * n / elapsed / 1e9)
            found[name] = best
    finally:
        torch.set_num_threads(before)
    return found


# -- FLOPs model ------------------------------------------------------------------------------------------------


def model_flops(model: Path, prompt_len: float, completion_len: float, rows: int) -> dict[str, float]:
    """FLOPs of one forward over the batch (``forward``), of generation and of training; see the docstring."""
    from bench_common import count_params

    config: dict[str, Any] = json.loads((model / "config.json").read_text())
    hidden, vocab = config["hidden_size"], config["vocab_size"]
    head = hidden * vocab
    stored = count_params(model)  # a tied head is stored once, as the embedding
    body = stored - head - (0 if config.get("tie_word_embeddings") else head)
    tokens, logits = rows * (prompt_len + completion_len), rows * completion_len
    forward = 2 * (body * tokens + head * logits)
    return {"body_params": body, "head_params": head, "forward": forward, "generate": forward,
            "train": 3 * forward}
