"""``skyrl eval`` (evaluate without training) and ``skyrl export`` (a checkpoint as an HF model folder)."""

from __future__ import annotations

import click

from skyrl_core.cli.common import console, load_run_config, run_options, verbose_option


@click.command("eval")
@click.option("--checkpoint", type=click.Path(), help="A checkpoint folder (ckpts/global_step_<N>) to evaluate.")
@click.option("--model", type=click.Path(), help="An HF model folder (e.g. from skyrl export) to evaluate.")
@run_options
@verbose_option
def eval_command(checkpoint, model, env, algo, config_file, plugin_files, overrides) -> None:  # noqa: ANN001
    """Evaluate without training: skyrl eval --checkpoint DIR | --model PATH [--env NAME] [key=value ...].

    Writes eval metrics (metrics.jsonl) and samples (samples/eval_step_<N>.jsonl) to trainer.output_dir.
    """
    config = load_run_config(env, algo, config_file, plugin_files, overrides)
    from skyrl_core.trainer.eval_launch import launch_eval

    run_dir, metrics = launch_eval(config, checkpoint=checkpoint, model=model)
    for key in sorted(metrics):
        console.print(f"{key} = {metrics[key]:.4f}", highlight=False)
    console.print(f"run folder: {run_dir.resolve()}", highlight=False)


@click.command("export")
@click.option("--checkpoint", required=True, type=click.Path(), help="A checkpoint folder (ckpts/global_step_<N>).")
@click.option("--output-dir", required=True, type=click.Path(file_okay=False), help="The HF model folder to write.")
def export_command(checkpoint: str, output_dir: str) -> None:
    """Write a checkpoint's policy as an HF model folder (weights, config, tokenizer, generation config)."""
    from skyrl_core.export import export_checkpoint

    path = export_checkpoint(checkpoint, output_dir)
    console.print(f"wrote {path.resolve()}", highlight=False)
