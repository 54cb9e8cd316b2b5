"""The memory estimate against hand-computed counts, its three verdicts, and an impossible run refused by the CLI
before Ray starts."""

from __future__ import annotations

import json

import pytest

from skyrl_core.cli.main import main
from skyrl_core.config.loader import RunArgs, resolve_config
from skyrl_core.errors import UserError
from skyrl_core.trainer import launch, memory_fit
from skyrl_core.trainer.memory_fit import Machine, check_memory, count_parameters, estimate, required

#: A Llama with vocabulary V=100, hidden H=16, 2 layers, 4 heads of 4 (2 KV heads), MLP I=32, untied head.
#: embed V*H = 1600; per layer q, o H*H = 256 each, k, v H*8 = 128 each, gate, up, down H*I = 512 each, two norms
#: 2H = 32: 2336, two layers 4672; final norm 16; lm_head V*H = 1600. Total 7888.
LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 100, "hidden_size": 16,
         "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "tie_word_embeddings": False}
PARAMS = 7888


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA))
    return folder


def _config(plugin_manager, model_dir, *overrides):
    return resolve_config(RunArgs(overrides=(f"trainer.policy.model.path={model_dir}", "trainer.strategy=ddp",
                                             "generator.backend=hf", *overrides)), plugin_manager)


def test_parameters_are_counted_from_config_json_alone(model_dir):
    assert count_parameters(str(model_dir), {}) == PARAMS
    # the critic's value head: the LM head (V*H) replaced by one output per token (H + its bias)
    assert count_parameters(str(model_dir), {}, head="value") == PARAMS - 1600 + 16 + 1


def test_ddp_with_ref_and_engine_matches_the_hand_count(plugin_manager, model_dir):
    config = _config(plugin_manager, model_dir, "trainer.algorithm.use_kl_loss=true", "trainer.bf16=true")
    needs = estimate(config, plugin_manager, on_gpu=False)
    # policy 16 B/param (fp32 weights 4 + grads 4 + AdamW 8), ref 4 B/param, one bf16 engine 2 B/param
    assert [n.each for n in needs] == [PARAMS * 16, PARAMS * 4, PARAMS * 2]
    need, have, where = required(needs, Machine("this machine", [10**9]), colocated=True)
    assert (need, have, where) == (PARAMS * 22, 10**9, "this machine")


def test_sharded_strategies_divide_what_they_shard(plugin_manager, model_dir):
    two = ("trainer.placement.policy_num_gpus_per_node=2", "trainer.algorithm.use_kl_loss=false",
           "trainer.train_batch_size=2", "trainer.policy_mini_batch_size=2")
    fsdp = _config(plugin_manager, model_dir, "trainer.strategy=fsdp2", *two)
    assert estimate(fsdp, plugin_manager, on_gpu=False)[0].each == PARAMS * 16 / 2
    zero2 = _config(plugin_manager, model_dir, "trainer.strategy=deepspeed", "trainer.bf16=true", *two,
                    "trainer.deepspeed.deepspeed_config.zero_optimization.stage=2")
    # bf16 weights 2 (replicated) + bf16 grads 2/2 + fp32 master and AdamW 12/2
    assert estimate(zero2, plugin_manager, on_gpu=False)[0].each == PARAMS * (2 + 1 + 6)
    offload = _config(plugin_manager, model_dir, "trainer.strategy=fsdp2", "trainer.fsdp2.cpu_offload=true", *two)
    assert estimate(offload, plugin_manager, on_gpu=True)[0].parts == {}  # nothing stays on the GPU


def test_verdicts(plugin_manager, model_dir):
    config = _config(plugin_manager, model_dir, "trainer.algorithm.use_kl_loss=false", "trainer.bf16=false")
    need = PARAMS * (16 + 4)  # policy + fp32 engine
    said: list[str] = []
    check_memory(config, plugin_manager, Machine("this machine", [need * 2]), said.append)
    assert said == []
    check_memory(config, plugin_manager, Machine("this machine", [need / 0.9]), said.append)
    assert len(said) == 1 and said[0].startswith("warning: the run needs at least") and "over 80%" in said[0]
    with pytest.raises(UserError, match=r"does not fit in memory: .* and this machine has 0\.0 GiB .*"
                                         r"trainer\.memory_check=warn"):
        check_memory(config, plugin_manager, Machine("this machine", [need / 2]), said.append)
    config.trainer.memory_check = "warn"
    check_memory(config, plugin_manager, Machine("this machine", [need / 2]), said.append)
    assert len(said) == 2 and "starting anyway" in said[1]
    config.trainer.memory_check = "off"
    check_memory(config, plugin_manager, Machine("this machine", [1]), said.append)
    assert len(said) == 2


def test_gpu_need_is_per_gpu_and_colocated_actors_add_up(plugin_manager, model_dir):
    config = _config(plugin_manager, model_dir, "trainer.algorithm.use_kl_loss=true", "trainer.bf16=true")
    needs = estimate(config, plugin_manager, on_gpu=True)
    gpus = Machine("GPU", [80 * 2**30, 40 * 2**30])
    assert required(needs, gpus, colocated=True) == (PARAMS * 22, 40 * 2**30, "the smallest GPU")
    assert required(needs, gpus, colocated=False)[0] == PARAMS * 16


def test_a_process_larger_than_any_node_is_refused_even_if_the_sum_fits(plugin_manager, model_dir):
    config = _config(plugin_manager, model_dir, "trainer.algorithm.use_kl_loss=false")
    nodes = Machine("the Ray cluster", [PARAMS * 10, PARAMS * 10, PARAMS * 10])
    with pytest.raises(UserError, match="the largest node of the Ray cluster"):
        check_memory(config, plugin_manager, nodes, print)


def test_a_model_config_that_cannot_be_read_skips_the_check(plugin_manager, tmp_path):
    config = _config(plugin_manager, tmp_path / "missing")
    said: list[str] = []
    check_memory(config, plugin_manager, Machine("this machine", [1]), said.append)
    assert len(said) == 1 and said[0].startswith("memory check skipped")


def test_an_impossible_run_exits_2_before_ray_starts(tmp_path, monkeypatch, capsys, plugin_manager, model_dir):
    import skyrl_core.ray_utils

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(skyrl_core.ray_utils, "init_ray", no_ray)
    monkeypatch.setattr(launch, "local_machine", lambda: Machine("this machine", [64 * 1024]))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(tmp_path)
    for name in ("SKYRL_PLUGIN_FILES", "SKYRL_PLUGIN_SOURCES"):  # main() sets them: restore them afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    with pytest.raises(SystemExit) as info:
        main(["run", f"trainer.policy.model.path={model_dir}", "trainer.strategy=ddp", "generator.backend=hf"])
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 2, err
    assert "error: the run does not fit in memory: it needs at least 0.0 GiB of memory" in err
    assert "this machine has 0.0 GiB" in err and "trainer.memory_check=warn" in err
    assert "Traceback" not in err
    assert not (tmp_path / "skyrl_runs").exists()  # refused before the run folder


def test_the_machine_is_the_cluster_nodes_memory_or_unknown_with_gpus(monkeypatch):
    import ray

    nodes = [{"Alive": True, "Resources": {"CPU": 8.0, "memory": 30e9}},
             {"Alive": False, "Resources": {"CPU": 8.0, "memory": 50e9}},
             {"Alive": True, "Resources": {"CPU": 4.0, "memory": 10e9}}]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert memory_fit.cluster_machine() == Machine("the Ray cluster", [30e9, 10e9])
    nodes[0]["Resources"]["GPU"] = 1.0
    assert memory_fit.cluster_machine() is None  # GPU memory of remote nodes is not known to the driver


def test_the_local_machine_without_gpus_is_its_available_ram(monkeypatch):
    import psutil
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    machine = memory_fit.local_machine()
    assert machine.where == "this machine" and not machine.on_gpu
    assert 0 < machine.sizes[0] <= psutil.virtual_memory().total
