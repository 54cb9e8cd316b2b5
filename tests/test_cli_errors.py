"""Bad inputs through the real CLI (``main([...])`` in process, nothing starts Ray): each exits 2 in seconds with
one message naming the key, file or plugin, and no traceback."""

from __future__ import annotations

import time

import pytest

from skyrl_core.cli.main import main

BROKEN_PLUGIN = "import missing_module_for_cli_errors_test\n"
MISSPELT_HOOK = "from skyrl_core import hookimpl\n\n@hookimpl\ndef register_enviroments(register):\n    pass\n"
WRONG_BASE = ("from skyrl_core import hookimpl\n\n@hookimpl\ndef register_environments(register):\n"
              "    register('not_an_env', dict)\n")

#: (id, arguments after `skyrl`, files to write {name: text}, text the message must contain)
CASES = [
    # values
    ("n_samples_0", ["config", "show", "generator.n_samples_per_prompt=0"], {}, "generator.n_samples_per_prompt"),
    ("engines_0", ["config", "show", "generator.num_inference_engines=0"], {}, "generator.num_inference_engines"),
    ("timeout_0", ["config", "show", "environment.step_timeout_s=0"], {}, "environment.step_timeout_s"),
    ("temperature_neg", ["config", "show", "generator.sampling_params.temperature=-1"], {}, "temperature"),
    ("top_p_0", ["config", "show", "generator.sampling_params.top_p=0"], {}, "top_p"),
    ("top_p_big", ["config", "show", "generator.eval_sampling_params.top_p=1.5"], {}, "eval_sampling_params.top_p"),
    ("top_k_0", ["config", "show", "generator.sampling_params.top_k=0"], {}, "top_k"),
    ("gen_len_0", ["config", "show", "generator.sampling_params.max_generate_length=0"], {}, "max_generate_length"),
    ("prompt_len_0", ["config", "show", "trainer.max_prompt_length=0"], {}, "trainer.max_prompt_length"),
    ("input_len_0", ["config", "show", "generator.max_input_length=0"], {}, "generator.max_input_length"),
    ("lr_neg", ["config", "show", "trainer.policy.optimizer_config.lr=-1e-6"], {}, "optimizer_config.lr"),
    ("betas", ["config", "show", "trainer.policy.optimizer_config.adam_betas=[0.9]"], {}, "adam_betas"),
    ("resume_mode", ["config", "show", "trainer.resume_mode=sometimes"], {}, "trainer.resume_mode"),
    ("kl_estimator", ["config", "show", "trainer.algorithm.kl_estimator_type=k4"], {}, "kl_estimator_type"),
    ("reduction", ["config", "show", "trainer.algorithm.loss_reduction=sum"], {}, "loss_reduction"),
    ("scheduler", ["config", "show", "trainer.policy.optimizer_config.scheduler=cosine"], {}, "scheduler"),
    ("dtype", ["config", "show", "generator.model_dtype=int3"], {}, "generator.model_dtype"),
    ("gpu_mem", ["config", "show", "generator.gpu_memory_utilization=1.5"], {}, "gpu_memory_utilization"),
    ("eval_batch_0", ["config", "show", "trainer.eval_batch_size=0"], {}, "trainer.eval_batch_size"),
    ("eval_n_0", ["config", "show", "generator.eval_n_samples_per_prompt=0"], {}, "eval_n_samples_per_prompt"),
    ("max_turns_0", ["config", "show", "generator.max_turns=0"], {}, "generator.max_turns"),
    ("epochs_0", ["config", "show", "trainer.epochs=0"], {}, "trainer.epochs"),
    ("clip_c", ["config", "show", "trainer.algorithm.clip_ratio_c=0.5"], {}, "clip_ratio_c"),
    ("type_int", ["config", "show", "trainer.eval_interval=often"], {}, "trainer.eval_interval"),
    ("type_bool", ["config", "show", "trainer.bf16=maybe"], {}, "trainer.bf16"),
    ("unknown_key", ["config", "show", "trainer.eval_intervl=3"], {}, "did you mean 'eval_interval'"),
    ("not_key_value", ["config", "show", "trainer.eval_interval"], {}, "must be key=value"),
    ("unsupported", ["config", "show", "generator.batched=true"], {}, "generator.batched: not supported yet"),
    # relations
    ("mini_gt_train", ["config", "show", "trainer.train_batch_size=4", "trainer.policy_mini_batch_size=8"], {},
     "trainer.policy_mini_batch_size"),
    ("mini_not_divisor", ["config", "show", "trainer.train_batch_size=6", "trainer.policy_mini_batch_size=4"], {},
     "must be a multiple of trainer.policy_mini_batch_size"),
    ("rows_over_workers", ["config", "show", "trainer.train_batch_size=3", "trainer.policy_mini_batch_size=3",
                           "generator.n_samples_per_prompt=1", "trainer.placement.policy_num_gpus_per_node=2"], {},
     "2 policy workers"),
    ("resume_path", ["config", "show", "trainer.resume_mode=from_path"], {}, "trainer.resume_path"),
    ("kl_twice", ["config", "show", "trainer.algorithm.use_kl_in_reward=true"], {}, "use_kl_in_reward"),
    # data
    ("missing_train", ["config", "show", "data.train_data=[nowhere/train.jsonl]"], {}, "nowhere/train.jsonl"),
    ("missing_val", ["run", "data.val_data=[nowhere/val.parquet]"], {}, "data.val_data[0]"),
    ("data_suffix", ["config", "show", "data.train_data=[rows.csv]"], {"rows.csv": "a,b\n"}, "rows.csv"),
    ("data_folder", ["config", "show", "data.train_data=[folder]"], {"folder/x.jsonl": "{}\n"}, "is a folder"),
    # plugins and names
    ("unknown_env", ["config", "show", "--env", "foo"], {}, "pip install skyrl-env-foo"),
    ("unknown_algo", ["run", "--algo", "nosuchalgo"], {}, "pip install skyrl-algo-nosuchalgo"),
    ("unknown_backend", ["config", "show", "generator.backend=nosuchbackend"], {}, "generator.backend"),
    ("unknown_logger", ["config", "show", "trainer.logger=[console,mlflw]"], {}, "trainer.logger"),
    ("unknown_estimator", ["config", "show", "trainer.algorithm.advantage_estimator=grpp"], {},
     "did you mean 'grpo'"),
    ("unknown_section", ["config", "show", "generator.weight_sync.nccll.bucket_size_mb=1"], {},
     "generator.weight_sync.nccll"),
    ("broken_plugin_file", ["config", "show", "--plugin", "broken_plugin.py"], {"broken_plugin.py": BROKEN_PLUGIN},
     "broken_plugin.py"),
    ("misspelt_hook", ["config", "show", "--plugin", "misspelt.py"], {"misspelt.py": MISSPELT_HOOK},
     "register_enviroments"),
    ("wrong_base", ["config", "show", "--plugin", "wrong_base.py", "--env", "not_an_env"],
     {"wrong_base.py": WRONG_BASE}, "not a subclass of skyrl_core.env.base.BaseTextEnv"),
    ("missing_plugin_file", ["config", "show", "--plugin", "nope.py"], {}, "nope.py"),
    # files
    ("missing_config", ["config", "show", "--config", "nope.yaml"], {}, "nope.yaml"),
    ("bad_yaml", ["run", "--config", "bad.yaml"], {"bad.yaml": "trainer: [unclosed\n"}, "bad.yaml"),
    ("yaml_not_mapping", ["config", "show", "--config", "list.yaml"], {"list.yaml": "- a\n- b\n"}, "list.yaml"),
    ("yaml_bad_value", ["config", "show", "--config", "v.yaml"], {"v.yaml": "trainer:\n  epochs: 0\n"},
     "trainer.epochs"),
]


@pytest.mark.parametrize(("args", "files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_message(tmp_path, monkeypatch, capsys, plugin_manager, args, files,
                                                  expected):
    monkeypatch.chdir(tmp_path)
    for name in ("SKYRL_PLUGIN_FILES", "SKYRL_PLUGIN_SOURCES"):  # main() sets them: restore them afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        main(list(args))
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert time.monotonic() - start < 30
    flat = " ".join(err.split())
    assert expected in flat, err
    assert "Traceback" not in err


def test_table_is_large_enough():
    assert len(CASES) >= 40


def test_strict_plugins_make_a_broken_entry_point_exit_2(skyrl_cli, installed_fixture_plugins):
    import os

    paths = os.pathsep.join(str(p) for p in installed_fixture_plugins.values())
    broken = [name for name in installed_fixture_plugins if "broken" in name]
    if not broken:
        pytest.skip("no broken fixture plugin distribution")
    result = skyrl_cli("config", "show", env={"PYTHONPATH": paths, "SKYRL_STRICT_PLUGINS": "1"})
    assert result.returncode == 2 and "SKYRL_STRICT_PLUGINS" in result.stderr
    assert "Traceback" not in result.stderr
