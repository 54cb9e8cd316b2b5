"""``skyrl run`` after the config resolved: choose components, find the data, make the run folder, train."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import yaml

from skyrl_core.config.components import check_components, resolve_auto
from skyrl_core.config.loader import component_section, config_to_dict
from skyrl_core.config.schema import SkyRLConfig
from skyrl_core.errors import DiskWriteError, UserError
from skyrl_core.plotting import write_run_plots
from skyrl_core.plugins import PluginManager, get_plugin_manager
from skyrl_core.trainer.memory_fit import check_memory, cluster_machine, local_machine

log = logging.getLogger("skyrl")


def run_dir_of(config: SkyRLConfig) -> Path:
    trainer = config.trainer
    return Path(trainer.output_dir or Path("skyrl_runs") / trainer.project_name / trainer.run_name).expanduser()


def resolve_data(config: SkyRLConfig, pm: PluginManager, run_dir: Path) -> tuple[list[str], list[str]]:
    """Training and validation files: the config's, else the env's registered dataset."""
    data = config.data
    if data.train_data:
        return list(data.train_data), list(data.val_data)
    env = config.environment.env_class
    if env is None:
        raise UserError("no training data: set data.train_data=[...] or pass --env NAME of an env with a dataset")
    builders = pm.registry("datasets")
    if env not in builders:
        raise UserError(f"env '{env}' registers no dataset builder; set data.train_data=[...] (and data.val_data)")
    home = Path("~/data").expanduser() / env
    if (home / "train.parquet").is_file() and (home / "validation.parquet").is_file():
        log.info("using the existing dataset in %s", home)
        return [str(home / "train.parquet")], list(data.val_data) or [str(home / "validation.parquet")]
    target = run_dir / "data"
    log.info("no data given and none in %s: building the '%s' dataset into %s", home, env, target)
    files = builders[env].build(target, component_section(data, env, "datasets", pm))
    return [str(files.train)], list(data.val_data) or [str(files.validation)]


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    if not Path(path).expanduser().is_dir():
        log.warning("'%s' is not a local folder: fetching it from the Hugging Face Hub (offline, this fails after the "
                    "hub's retries; HF_HUB_OFFLINE=1 fails at once)", path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise UserError(f"cannot load the tokenizer of trainer.policy.model.path='{path}': {exc}. Use a local HF "
                        "model folder (offline test model: skyrl model tiny --output-dir DIR)") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def launch(config: SkyRLConfig, pm: PluginManager | None = None) -> Path:
    """Train with ``config``; returns the run folder."""
    from rich.console import Console

    pm = pm or get_plugin_manager()
    console = Console(stderr=True)
    for choice in resolve_auto(config, pm):
        console.print(f"[dim]{choice.key}={choice.value}: {choice.reason}[/]", highlight=False)
    check_components(config, pm)
    pm.registry("inference_backends")[config.generator.backend].check_run(config)
    if not os.environ.get("RAY_ADDRESS"):  # joining a cluster: checked against its nodes once connected
        check_memory(config, pm, local_machine(), say=_say)
    run_dir = run_dir_of(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    with driver_log(run_dir / "logs" / "driver.log"):
        train_files, val_files = resolve_data(config, pm, run_dir)
        run_training(config, pm, run_dir, train_files, val_files)
    if config.trainer.write_plots:
        write_run_plots(run_dir)
    console.print(f"run folder: {run_dir.resolve()} (metrics.jsonl, samples/, config.yaml)", highlight=False)
    return run_dir


def _say(line: str) -> None:
    """One line on stderr, as it is (no markup)."""
    from rich.console import Console

    Console(stderr=True).print(line, highlight=False, markup=False)


@contextlib.contextmanager
def driver_log(path: Path) -> Any:
    """skyrl's log lines (and the libraries' warnings) of this run, also written to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run_training(config: SkyRLConfig, pm: PluginManager, run_dir: Path, train_files: list[str],
                 val_files: list[str]) -> None:
    import torch

    from skyrl_core.config.sections import sections_of
    from skyrl_core.data.loader import PromptDataLoader
    from skyrl_core.data.reader import load_prompt_dataset
    from skyrl_core.loggers.base import make_loggers
    from skyrl_core.ray_utils import init_ray
    from skyrl_core.trainer.actors import RunActors
    from skyrl_core.trainer.checkpoint import (
        CheckpointWriter,
        find_resume_point,
        resume_note,
        truncate_metrics,
        warn_on_changed_settings,
    )
    from skyrl_core.trainer.faults import copy_actor_logs
    from skyrl_core.trainer.loop import Trainer
    from skyrl_core.trainer.stopping import RunStopped, StopRequest

    torch.set_num_threads(1)
    trainer = config.trainer
    tokenizer = load_tokenizer(trainer.policy.model.path)
    envs = list(pm.registry("environments"))
    read = dict(tokenizer=tokenizer, max_prompt_length=trainer.max_prompt_length,
                default_env_class=config.environment.env_class, known_envs=envs)
    train_set = load_prompt_dataset(train_files, **read)
    val_rows = load_prompt_dataset(val_files, **read).rows if val_files else []
    loader = PromptDataLoader(train_set.rows, batch_size=trainer.train_batch_size, seed=trainer.seed,
                              epochs=trainer.epochs)
    config_dict = config_to_dict(config, redact_secrets=False)
    resume = find_resume_point(config, run_dir)
    if resume is not None:
        warn_on_changed_settings(resume, config_dict)
        dropped = truncate_metrics(run_dir, resume.global_step)
        log.info("resuming from %s (step %d)%s", resume.folder, resume.global_step,
                 f"; dropped {dropped} metrics rows logged after it" if dropped else "")
    checkpoints = CheckpointWriter(config, run_dir, yaml.safe_dump(config_to_dict(config), sort_keys=False))
    loggers = make_loggers(trainer.logger, registry=pm.registry("loggers"), run_dir=run_dir,
                           project_name=trainer.project_name, run_name=trainer.run_name,
                           config=config_to_dict(config), sections=sections_of(trainer, "loggers"))
    ray = init_ray()
    if os.environ.get("RAY_ADDRESS"):
        check_memory(config, pm, cluster_machine(), say=_say)
    with StopRequest() as stop:
        actors = RunActors(config, config_dict, pm, cpu_count=os.cpu_count() or 1)
        actors.directory.write(run_dir / "actors.json")
        try:
            trainer = Trainer(config=config, pm=pm, actors=actors, tokenizer=tokenizer, train_loader=loader,
                              val_rows=val_rows, loggers=loggers, checkpoints=checkpoints, run_dir=run_dir,
                              stop=stop)
            trainer.fit(resume)
        except ray.exceptions.RayActorError as exc:
            raise actors.directory.describe(exc, checkpoints.root) from None
        except DiskWriteError as exc:
            raise DiskWriteError(f"{exc}\n{resume_note(checkpoints.root)}") from None
        finally:
            loggers.finish()
            copy_actor_logs(actors.directory, run_dir / "logs")
            actors.shutdown()
    if stop.requested:
        saved = (f"the checkpoint of step {trainer.global_step} is in {checkpoints.root}; continue with the same "
                 "command (trainer.resume_mode=latest)" if config.trainer.ckpt_on_signal
                 else "no checkpoint was written (trainer.ckpt_on_signal=false)")
        raise RunStopped(stop.signum, f"stopped by {signal.Signals(stop.signum).name} after step "
                                      f"{trainer.global_step}: {saved}")
