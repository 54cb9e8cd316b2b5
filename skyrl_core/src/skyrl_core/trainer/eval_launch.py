"""``skyrl eval``: evaluate a model or a checkpoint without training, into a run folder of its own."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from skyrl_core.config.components import check_components, resolve_auto
from skyrl_core.config.loader import component_section, config_to_dict
from skyrl_core.errors import UserError
from skyrl_core.plugins import PluginManager, get_plugin_manager
from skyrl_core.trainer.launch import load_tokenizer, resolve_data, run_dir_of

log = logging.getLogger("skyrl")


def launch_eval(config: Any, *, checkpoint: str | None, model: str | None,
                pm: PluginManager | None = None) -> tuple[Path, dict[str, float]]:
    """Evaluate ``model`` (an HF folder) or the policy of ``checkpoint``; returns the run folder and metrics."""
    import yaml

    from skyrl_core.data.reader import load_prompt_dataset
    from skyrl_core.export import export_checkpoint
    from skyrl_core.loggers.builtin import JsonlLogger
    from skyrl_core.trainer.checkpoint import read_checkpoint
    from skyrl_core.trainer.evaluation import evaluate, generate_rows, write_eval_samples

    if (checkpoint is None) == (model is None):
        raise UserError("skyrl eval needs exactly one of --checkpoint DIR or --model PATH")
    pm = pm or get_plugin_manager()
    run_dir = run_dir_of(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    step = 0
    if checkpoint is not None:
        step = read_checkpoint(Path(checkpoint).expanduser()).global_step
        model = str(export_checkpoint(checkpoint, run_dir / "model"))
        log.info("exported the checkpoint's policy to %s", model)
    config.trainer.policy.model.path = model
    resolve_auto(config, pm)
    check_components(config, pm)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    _train, val_files = resolve_data(config, pm, run_dir)
    if not val_files:
        raise UserError("no validation data: set data.val_data=[...] or pass --env NAME of an env with a dataset")
    tokenizer = load_tokenizer(model)
    val_rows = load_prompt_dataset(val_files, tokenizer=tokenizer, max_prompt_length=config.trainer.max_prompt_length,
                                   default_env_class=config.environment.env_class,
                                   known_envs=list(pm.registry("environments"))).rows
    engines = _start_engines(config, pm)
    try:
        from skyrl_core.inference.client import EngineClient

        generator_cls = pm.registry("generators")[config.generator.name]
        generator = generator_cls(config=component_section(config.generator, config.generator.name, "generators", pm),
                                  run_config=config, tokenizer=tokenizer,
                                  engine_client=EngineClient(engines, remote=True), plugin_manager=pm)
        metrics, first = evaluate(config, val_rows, lambda *a: generate_rows(generator, *a))
    finally:
        import ray

        for engine in engines:
            ray.kill(engine)
    sink = JsonlLogger(run_dir=run_dir, project_name=config.trainer.project_name, run_name=config.trainer.run_name,
                       config=config_to_dict(config))
    sink.log(metrics, step=step)
    sink.finish()
    write_eval_samples(run_dir, step, first, tokenizer, config.trainer.num_logger_samples)
    return run_dir, metrics


def _start_engines(config: Any, pm: PluginManager) -> list[Any]:
    from skyrl_core.ray_utils import init_ray
    from skyrl_core.workers.groups import make_engines, make_placement

    init_ray()
    num = config.generator.num_inference_engines
    placement = make_placement(config, num)
    return make_engines(config, config_to_dict(config, redact_secrets=False), placement,
                        num_threads=max(1, (os.cpu_count() or 1) // num))
