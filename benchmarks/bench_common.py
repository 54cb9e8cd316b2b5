"""Shared pieces of ``grpo_step_vs_trl.py``: the benchmark's settings, model and data set-up, CPU accounting.

- ``PROMPTS``, ``SAMPLES``, ``NEW_TOKENS``, ``LR``, ... and ``SIZES``: what one GRPO step is, on both sides;
- ``build_model``, ``count_params``, ``build_data``, ``prompt_tokens``: the random-weight Qwen2 models and the
  ``multiply`` prompts (and their mean length in tokens, for the FLOPs model of ``bench_measure.py``);
- ``CpuMonitor``: samples ``/proc`` to charge each step with the CPU that processes outside the benchmark used,
  and waits for an idle machine;
- ``versions``, ``child_env``, ``stop_group``, ``tail``, ``mean``, ``median``: small helpers of the runs and report.

Imported as a top-level module: ``grpo_step_vs_trl.py``'s folder is on ``sys.path`` when it runs as a script.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from pathlib import Path

#: The batch of one step: prompts, samples per prompt, new tokens per sample.
PROMPTS, SAMPLES, NEW_TOKENS = 8, 4, 32
ROWS = PROMPTS * SAMPLES
LR, WEIGHT_DECAY, MAX_GRAD_NORM, SEED = 1e-6, 0.01, 1.0, 42

#: Model sizes: ``None`` is ``make_tiny_model(size="small")`` as is; a dict replaces its config's fields (shape,
#: and for ``135m`` the vocabulary and tied embeddings of SmolLM2-135M: the tokenizer keeps its ~1.9k tokens, so
#: the model can sample ids that decode to nothing, which is harmless for timing).
SIZES: dict[str, dict[str, int | bool] | None] = {
    "10m": None,
    "25m": dict(hidden_size=384, num_hidden_layers=11, num_attention_heads=6, num_key_value_heads=2,
                intermediate_size=1536),
    "135m": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                 intermediate_size=1536, vocab_size=49152, tie_word_embeddings=True),
}


# -- set-up -----------------------------------------------------------------------------------------------------


def build_model(path: Path, shape: dict[str, int | bool] | None, seed: int = 0) -> Path:
    """The ``small`` tiny model (tokenizer + random Qwen2) in ``path``; with ``shape``, a bigger transformer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from skyrl_core.testing.tiny_model import make_tiny_model

    make_tiny_model(path, arch="qwen2", seed=seed, size="small")
    if shape:
        base = AutoConfig.from_pretrained(path)
        fields = base.to_dict()
        for derived in ("layer_types", "head_dim", "architectures", "transformers_version"):
            fields.pop(derived, None)  # recomputed by the config class from the new shape
        config = type(base)(**{**fields, **shape})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config = GenerationConfig.from_pretrained(path)
        model.save_pretrained(path)
    return path


def count_params(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                n = 1
                for dim in f.get_slice(name).get_shape():
                    n *= dim
                total += n
    return total


def build_data(path: Path, steps: int) -> Path:
    """The ``multiply`` dataset with a fresh batch of prompts for every step; returns the train file."""
    from skyrl_env_multiply.dataset import MultiplyDataConfig, MultiplyDatasetBuilder

    files = MultiplyDatasetBuilder().build(
        path, MultiplyDataConfig(train_size=max(64, PROMPTS * (steps + 1)), val_size=8, seed=SEED)
    )
    return Path(files.train)


def prompt_tokens(model: Path, train_file: Path) -> float:
    """Mean tokens of the chat-templated prompts (with the generation prompt), as both sides feed them."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = pq.read_table(train_file).to_pylist()
    lengths = []
    for row in rows:
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)
        lengths.append(len(ids["input_ids"] if hasattr(ids, "keys") else ids))  # a dict in transformers 5
    return sum(lengths) / len(lengths)


# -- CPU accounting ---------------------------------------------------------------------------------------------


class CpuMonitor:
    """Every ``interval`` s: CPU seconds used by this process and its descendants, and by everything else.

    ``others`` is the machine's busy time from ``/proc/stat`` (all CPUs, including processes that exited between
    samples) minus this tree's (from ``/proc/PID/stat``). Without ``/proc`` (not Linux) it records nothing and
    every query answers ``None``.
    """

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.root = os.getpid()
        self.samples: list[tuple[float, float, float]] = []  # (monotonic time, ours cpu-s, others cpu-s) per gap
        self.available = Path("/proc/stat").is_file()
        self._last_pid_ticks: dict[int, int] = {}
        self._last_busy: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CpuMonitor:
        if self.available:
            self._sample()
            self._thread = threading.Thread(target=self._loop, name="cpu-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except OSError:
                pass

    @staticmethod
    def _machine_busy() -> int:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        return sum(fields[:8]) - fields[3] - fields[4]

    def _tree_ticks(self) -> dict[int, int]:
        parents, ticks = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid], ticks[pid] = int(rest[1]), int(rest[11]) + int(rest[12])
        ours: dict[int, int] = {}
        for pid in ticks:
            node, seen = pid, 0
            while node > 1 and seen < 64:
                if node == self.root:
                    ours[pid] = ticks[pid]
                    break
                node, seen = parents.get(node, 0), seen + 1
        return ours

    def _sample(self) -> None:
        busy = self._machine_busy()
        tree = self._tree_ticks()
        now = time.monotonic()
        if self._last_busy is not None:
            ours = sum(t - self._last_pid_ticks.get(pid, 0) for pid, t in tree.items())
            others = max(0, (busy - self._last_busy) - ours)
            with self._lock:
                self.samples.append((now, ours / self.tick, others / self.tick))
        self._last_busy, self._last_pid_ticks = busy, tree

    def others_cores(self, start: float, end: float) -> float | None:
        """Average cores used outside this benchmark between two ``time.monotonic()`` times."""
        if not self.available or end <= start:
            return None
        with self._lock:
            samples = list(self.samples)
        total, covered, prev = 0.0, 0.0, None
        for t, _ours, others in samples:
            if prev is not None:
                overlap = min(t, end) - max(prev, start)
                if overlap > 0:
                    total += others * overlap / (t - prev)
                    covered += overlap
            prev = t
        return total / covered if covered > 0 else None

    def wait_idle(self, max_cores: float, timeout: float, window: float = 5.0) -> tuple[float, float | None]:
        """Wait until others used < ``max_cores`` over ``window`` s (at most ``timeout`` s); (waited s, cores)."""
        start = time.monotonic()
        cores = None
        if not self.available:
            return 0.0, None
        while True:
            time.sleep(window)
            now = time.monotonic()
            cores = self.others_cores(now - window, now)
            if cores is not None and cores < max_cores or now - start >= timeout:
                return now - start, cores



# -- helpers ----------------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of what is compared, and the skyrl checkout's commit (``+dirty`` with uncommitted changes)."""
    import importlib.metadata as md

    found = {}
    for dist in ("skyrl-core", "trl", "transformers", "torch", "ray"):
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = "-"
    repo = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        found["skyrl commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        found["skyrl commit"] = "-"
    return found


def child_env() -> dict[str, str]:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    env.pop("RAY_ADDRESS", None)
    return env


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the process group that ``proc`` leads."""
    import signal

    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
