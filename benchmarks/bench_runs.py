"""The two sides of ``grpo_step_vs_trl.py``: one skyrl run and one TRL run, each in a subprocess.

- ``run_skyrl``: ``python -m skyrl_core.cli.main run --env multiply --algo grpo ...``; per-step timings from the
  run's ``metrics.jsonl``;
- ``run_trl``: re-runs ``grpo_step_vs_trl.py --trl-worker SPEC.json``, whose ``main`` calls ``trl_worker``: TRL's
  ``GRPOTrainer`` with the same settings, timed by a ``TrainerCallback`` and wrapped rollout methods.
- ``SKYRL_MODES``, ``TRL_MODES``: the settings of each ``--mode``: ``equal`` (fp32 on both sides) and ``best``
  (skyrl: ``trainer.bf16=true`` autocast training and a ``bfloat16`` engine; TRL: ``bf16=True`` autocast).

Both run functions sample the PSS of the side's process tree every second (``bench_measure.PssMonitor``) and
return its peaks over the timed steps (every step after the first) as ``memory``.

Imported as a top-level module: ``grpo_step_vs_trl.py``'s folder is on ``sys.path`` when it runs as a script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_common import (
    LR,
    MAX_GRAD_NORM,
    NEW_TOKENS,
    PROMPTS,
    ROWS,
    SAMPLES,
    SEED,
    WEIGHT_DECAY,
    child_env,
    mean,
    stop_group,
    tail,
)
from bench_measure import PssMonitor

#: The entry point that ``run_trl`` starts with ``--trl-worker SPEC.json``.
ENTRY_POINT = Path(__file__).resolve().with_name("grpo_step_vs_trl.py")

#: Per ``--mode``: skyrl's extra overrides (after the shared ones) and TRL's ``GRPOConfig`` fields.
SKYRL_MODES: dict[str, list[str]] = {
    "equal": ["trainer.bf16=false"],
    "best": ["trainer.bf16=true", "generator.model_dtype=bfloat16"],
}
TRL_MODES: dict[str, dict[str, Any]] = {
    "equal": {"bf16": False},
    "best": {"bf16": True},
}
#: skyrl timing keys other than generate/train/weight_sync/step that, when a run logs them, are parts of
#: ``timing/train`` (the reference / old log-prob forwards run inside it) and are reported apart from it.
LOGPROB_KEYS = ("timing/ref_logprobs", "timing/old_logprobs", "timing/logprobs", "timing/compute_logprobs")


def _windows_peaks(monitor: PssMonitor, windows: list[tuple[float, float]]) -> dict[str, float] | None:
    return monitor.peaks(windows[1:] if len(windows) > 1 else windows)


# -- skyrl ------------------------------------------------------------------------------------------------------


def skyrl_overrides(model: Path, train_file: Path, out: Path, steps: int) -> list[str]:
    return [
        f"trainer.policy.model.path={model}",
        f"data.train_data=['{train_file}']",
        "data.val_data=[]",
        f"trainer.output_dir={out}",
        f"trainer.max_training_steps={steps}",
        f"trainer.train_batch_size={PROMPTS}",
        f"trainer.policy_mini_batch_size={PROMPTS}",
        f"generator.n_samples_per_prompt={SAMPLES}",
        f"generator.sampling_params.max_generate_length={NEW_TOKENS}",
        "generator.sampling_params.temperature=1.0",
        "generator.sampling_params.top_p=1.0",
        "generator.sampling_params.top_k=-1",
        f"trainer.micro_train_batch_size_per_gpu={ROWS}",
        f"trainer.micro_forward_batch_size_per_gpu={ROWS}",
        "trainer.gradient_checkpointing=false",
        "trainer.algorithm.use_kl_loss=false",
        "trainer.algorithm.use_entropy_loss=false",
        f"trainer.policy.optimizer_config.lr={LR}",
        f"trainer.policy.optimizer_config.weight_decay={WEIGHT_DECAY}",
        f"trainer.policy.optimizer_config.max_grad_norm={MAX_GRAD_NORM}",
        "trainer.policy.optimizer_config.num_warmup_steps=0",
        "trainer.eval_interval=0",
        "trainer.eval_before_train=false",
        f"trainer.seed={SEED}",
        "trainer.logger=console",
    ]


def run_skyrl(model: Path, train_file: Path, workdir: Path, steps: int, timeout: float,
              tag: str = "", mode: str = "equal", attempts: int = 3) -> dict[str, Any]:
    """One ``skyrl run``, retried when it fails before its first step (a Ray cluster that did not come up, e.g.
    a port clash with another session's cluster on a shared machine)."""
    for attempt in range(1, attempts + 1):
        try:
            return _run_skyrl(model, train_file, workdir, steps, timeout, tag, mode)
        except _StartupError as exc:
            if attempt == attempts:
                raise RuntimeError(str(exc)) from None
            print(f"  skyrl failed before its first step (attempt {attempt}); retrying", flush=True)
            time.sleep(10)
    raise AssertionError("unreachable")


class _StartupError(RuntimeError):
    pass


def _run_skyrl(model: Path, train_file: Path, workdir: Path, steps: int, timeout: float, tag: str, mode: str
               ) -> dict[str, Any]:
    """One ``skyrl run``; per step its timings and the (monotonic) time its metrics line appeared."""
    out = workdir / f"skyrl_run{tag}"
    shutil.rmtree(out, ignore_errors=True)
    metrics_file = out / "metrics.jsonl"
    cmd = [sys.executable, "-m", "skyrl_core.cli.main", "run", "--env", "multiply", "--algo", "grpo",
           *skyrl_overrides(model, train_file, out, steps), *SKYRL_MODES[mode]]
    log_file = workdir / f"skyrl{tag}.log"
    seen: list[float] = []  # when each metrics line showed up: the step ended just before
    start = time.monotonic()
    with open(log_file, "w") as log:
        # Its own process group, so that a timeout or Ctrl-C also stops the Ray processes the run started.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)
        memory = PssMonitor(proc.pid, "driver").start()
        try:
            while proc.poll() is None:
                if time.monotonic() - start > timeout:
                    raise RuntimeError(f"skyrl run timed out after {timeout:.0f}s; see {log_file}")
                if metrics_file.is_file():
                    lines = sum(1 for line in metrics_file.read_text().splitlines() if line.strip())
                    seen.extend([time.monotonic()] * (lines - len(seen)))
                time.sleep(0.2)
        finally:
            memory.stop()
            if proc.poll() is None:
                stop_group(proc)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        error = _StartupError if not seen else RuntimeError
        raise error(f"skyrl run failed (exit {proc.returncode}); see {log_file}:\n{tail(log_file)}")
    lines = [line for line in metrics_file.read_text().splitlines() if line.strip()]
    seen.extend([time.monotonic()] * (len(lines) - len(seen)))
    records = [(json.loads(line), t) for line, t in zip(lines, seen)]
    records = [(r, t) for r, t in records if r.get("timing/step") is not None]
    if not records:
        raise RuntimeError(f"skyrl wrote no timing/step in {metrics_file}")

    def series(key: str) -> list[float | None]:
        return [None if r.get(key) is None else float(r[key]) for r, _ in records]

    logprob_keys = [k for k in LOGPROB_KEYS if any(r.get(k) is not None for r, _ in records)]
    logprobs = [sum(float(r.get(k) or 0.0) for k in logprob_keys) if logprob_keys else None for r, _ in records]
    train = [None if tr is None else tr - (lp or 0.0) for tr, lp in zip(series("timing/train"), logprobs)]
    windows = [(t - float(r["timing/step"]), t) for r, t in records]
    return {
        "steps": series("timing/step"),
        "windows": windows,
        "generate": series("timing/generate"),
        "logprobs": logprobs,
        "logprob_keys": logprob_keys,
        "timing_keys": sorted({k for r, _ in records for k in r if k.startswith("timing/")}),
        "train": train,
        "weight_sync": series("timing/weight_sync"),
        "completion_length": mean([x for x in series("response_length/mean") if x is not None]),
        "wall_s": wall,
        "memory": _windows_peaks(memory, windows),
        "log": str(log_file),
    }


# -- TRL --------------------------------------------------------------------------------------------------------


def run_trl(model: Path, train_file: Path, workdir: Path, steps: int, threads: int, timeout: float,
            tag: str = "", mode: str = "equal", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = {"model": str(model), "train_file": str(train_file), "output_dir": str(workdir / f"trl_run{tag}"),
            "steps": steps, "threads": threads, "result": str(workdir / f"trl_result{tag}.json"),
            "config": {**TRL_MODES[mode], **(extra or {})}}
    spec_file = workdir / f"trl_spec{tag}.json"
    spec_file.write_text(json.dumps(spec))
    log_file = workdir / f"trl{tag}.log"
    start = time.monotonic()
    with open(log_file, "w") as log:
        proc = subprocess.Popen([sys.executable, str(ENTRY_POINT), "--trl-worker", str(spec_file)],
                                stdout=log, stderr=subprocess.STDOUT, env=child_env(), start_new_session=True)
        memory = PssMonitor(proc.pid, "trl").start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"TRL run timed out after {timeout:.0f}s; see {log_file}") from None
        finally:
            memory.stop()
            if proc.poll() is None:
                stop_group(proc)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"TRL run failed (exit {proc.returncode}); see {log_file}:\n{tail(log_file)}")
    result = json.loads(Path(spec["result"]).read_text())
    result.update(wall_s=wall, log=str(log_file), memory=_windows_peaks(memory, result["windows"]))
    return result


def trl_worker(spec_file: str) -> None:
    """Run TRL's GRPOTrainer as described by ``spec_file`` and write the per-step timings (the child process)."""
    import dataclasses

    spec = json.loads(Path(spec_file).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    import pyarrow.parquet as pq
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from skyrl_env_multiply.env import MultiplyEnv

    rows = pq.read_table(spec["train_file"]).to_pylist()
    dataset = Dataset.from_list(
        [{"prompt": row["prompt"], "ground_truth": row["reward_spec"]["ground_truth"]} for row in rows]
    )

    def multiply_reward(completions: list[Any], ground_truth: list[str], **_: Any) -> list[float]:
        """skyrl's own ``multiply`` env grades each completion, so both sides use the same reward."""
        rewards = []
        for completion, truth in zip(completions, ground_truth):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            rewards.append(float(MultiplyEnv(extras={"reward_spec": {"ground_truth": truth}}).step(text).reward))
        return rewards

    wanted = dict(
        output_dir=spec["output_dir"], max_steps=spec["steps"], per_device_train_batch_size=ROWS,
        gradient_accumulation_steps=1, steps_per_generation=1, num_generations=SAMPLES,
        max_completion_length=NEW_TOKENS, temperature=1.0, top_p=1.0, top_k=0, beta=0.0, num_iterations=1,
        learning_rate=LR, weight_decay=WEIGHT_DECAY, adam_beta1=0.9, adam_beta2=0.999, max_grad_norm=MAX_GRAD_NORM,
        optim="adamw_torch", lr_scheduler_type="constant", warmup_steps=0, bf16=False, fp16=False, use_cpu=True,
        gradient_checkpointing=False, torch_compile=False, report_to="none", logging_steps=1, save_strategy="no",
        seed=SEED, disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False, log_completions=False,
    )
    wanted.update(spec.get("config") or {})  # the mode's fields (bf16, ...)
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    dropped = sorted(set(wanted) - fields)
    if dropped:
        print(f"GRPOConfig of trl {trl.__version__} has no {dropped}; left at their defaults", flush=True)
    args = GRPOConfig(**{k: v for k, v in wanted.items() if k in fields})

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.windows: list[tuple[float, float]] = []
            self.logs: list[dict[str, Any]] = []
            self.threads: set[int] = set()
            self._start = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - TrainerCallback API
            self.threads.add(torch.get_num_threads())
            self._start = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.windows.append((self._start, time.monotonic()))

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            self.logs.append(dict(logs or {}))

    timer = StepTimer()
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    trainer = GRPOTrainer(model=model, reward_funcs=multiply_reward, args=args, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[timer])
    torch.set_num_threads(spec["threads"])  # in case accelerate changed it

    phases: dict[str, list[float]] = {}
    for name in ("_generate_and_score_completions", "_generate_single_turn"):
        if hasattr(trainer, name):
            setattr(trainer, name, _timed(getattr(trainer, name), phases.setdefault(name, [])))

    trainer.train()
    lengths = [log["completions/mean_length"] for log in timer.logs if "completions/mean_length" in log]
    Path(spec["result"]).write_text(json.dumps({
        "steps": [end - start for start, end in timer.windows],
        "windows": timer.windows,
        "rollout": phases.get("_generate_and_score_completions", []),
        "generate": phases.get("_generate_single_turn", []),
        "completion_length": mean(lengths),
        "threads": sorted(timer.threads),
        "config": {k: v for k, v in wanted.items() if k in (spec.get("config") or {})},
        "trl_version": trl.__version__,
    }))


def _timed(method: Any, durations: list[float]) -> Any:
    """``method`` wrapped to append the seconds of each call to ``durations``."""
    import functools

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    return timed
