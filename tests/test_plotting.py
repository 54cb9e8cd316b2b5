"""``skyrl plot`` and the ``plots/`` folder of a run: smoothing, metric choice, errors, and a PNG from a real run."""

from __future__ import annotations

import json

import pytest
from e2e_helpers import run_config

from skyrl_core.cli.main import main
from skyrl_core.errors import UserError
from skyrl_core.plotting import (
    available_metrics,
    choose_metrics,
    ema,
    plot_runs,
    read_metrics,
    run_labels,
    series,
    write_run_plots,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROWS = [
    {"step": 0, "eval/reward/mean": 0.0},
    {"step": 1, "reward/mean": 0.25, "entropy": 2.0, "note": "text"},
    {"step": 2, "reward/mean": 0.5, "entropy": None, "eval/reward/mean": 0.5},
    {"step": 3, "reward/mean": 1.0, "entropy": 1.0},
]


def _run(folder, rows=ROWS):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_ema_by_hand():
    # s0 = 1; s1 = 0.5 * 1 + 0.5 * 0 = 0.5; s2 = 0.5 * 0.5 + 0.5 * 1 = 0.75
    assert ema([1.0, 0.0, 1.0], 0.5) == [1.0, 0.5, 0.75]
    assert ema([3.0, 1.0], 0.0) == [3.0, 1.0]
    assert ema([], 0.5) == []
    with pytest.raises(UserError, match="smoothing"):
        ema([1.0], 1.0)


def test_series_skips_missing_and_non_numbers():
    assert series(ROWS, "reward/mean") == ([1, 2, 3], [0.25, 0.5, 1.0])
    assert series(ROWS, "entropy") == ([1, 3], [2.0, 1.0])
    assert series(ROWS, "eval/reward/mean") == ([0, 2], [0.0, 0.5])
    assert available_metrics([ROWS]) == ["entropy", "eval/reward/mean", "reward/mean"]


def test_metric_choice_defaults_and_unknown_names():
    assert choose_metrics([ROWS], None) == ["reward/mean", "eval/reward/mean", "entropy"]
    assert choose_metrics([ROWS], ["entropy"]) == ["entropy"]
    with pytest.raises(UserError, match=r"unknown metric\(s\): rewards.*Available metrics:\n  entropy\n"):
        choose_metrics([ROWS], ["rewards", "entropy"])


def test_labels_are_folder_names_unless_they_clash(tmp_path):
    assert run_labels([tmp_path / "a" / "run", tmp_path / "b"]) == ["run", "b"]
    clashing = [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]
    assert run_labels(clashing) == clashing


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UserError, match="no metrics.jsonl in"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{oops\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2 is not valid JSON"):
        read_metrics(tmp_path)


def test_several_runs_in_one_png(tmp_path):
    runs = [_run(tmp_path / "a"), _run(tmp_path / "b", [{"step": 1, "reward/mean": 0.0}])]
    one_chart = _png_size(plot_runs(runs, tmp_path / "one.png", metrics=["reward/mean"]))
    four_charts = _png_size(plot_runs(runs, tmp_path / "out" / "four.png",
                                      metrics=["reward/mean", "eval/reward/mean", "entropy"]))
    assert one_chart == (600, 360)  # 6 x 3.6 inches at 100 dpi
    assert four_charts == (1200, 720)  # two columns, two rows


def test_cli_default_output_and_bad_names(tmp_path, capsys):
    run = _run(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(run)])
    assert exit_info.value.code == 0
    assert (run / "plots" / "metrics.png").read_bytes()[:8] == PNG_MAGIC
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(run), "--metrics", "reward/mean,nope", "--output", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown metric(s): nope" in err and "eval/reward/mean" in err
    assert not (tmp_path / "x.png").exists()


def test_end_of_run_plot_needs_a_default_metric(tmp_path):
    assert write_run_plots(_run(tmp_path / "run", [{"step": 1, "lr": 1e-5}])) is None
    assert not (tmp_path / "run" / "plots").exists()


def test_a_real_run_writes_its_plot_and_can_be_replotted(ray_local, plugin_manager, tiny_model_path, tmp_path):
    from skyrl_core.trainer.launch import launch

    out = tmp_path / "run"
    config = run_config(plugin_manager, tiny_model_path, out, "trainer.max_training_steps=2",
                        "data.multiply.train_size=16", "data.multiply.val_size=4", "trainer.eval_interval=2",
                        "trainer.eval_batch_size=4")
    launch(config, plugin_manager)
    assert _png_size(out / "plots" / "metrics.png") == (1200, 720)
    assert _png_size(plot_runs([out], tmp_path / "reward.png", metrics=["reward/mean", "eval/reward/mean"])) == (
        1200, 360)


def test_write_plots_false_writes_none(ray_local, plugin_manager, tiny_model_path, tmp_path):
    from skyrl_core.trainer.launch import launch

    out = tmp_path / "run"
    config = run_config(plugin_manager, tiny_model_path, out, "trainer.max_training_steps=1",
                        "data.multiply.train_size=4", "data.multiply.val_size=4", "trainer.write_plots=false")
    launch(config, plugin_manager)
    assert (out / "metrics.jsonl").is_file() and not (out / "plots").exists()
