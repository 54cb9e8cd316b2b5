"""Several nodes: ``skyrl run`` joins the Ray cluster of ``RAY_ADDRESS`` (two nodes started on this machine with
``ray.cluster_utils.Cluster``), places its two ``ddp`` policy workers on different nodes
(``trainer.placement.policy_num_nodes=2``), ships its ``--plugin`` file to them, trains GRPO steps (the gradients
all-reduced between the nodes), and writes nothing outside its output folder.

The cluster runs in a helper process of its own (this file run as a script): ``Cluster.shutdown`` resets Ray's
process-global state, which would break the Ray session the rest of the suite shares in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import SKYRL
from e2e_helpers import FAST, read_metrics

#: An env a random tiny model gets varied rewards in (so GRPO's gradients are not zero): the share of a..m letters.
LETTERS_PLUGIN = """
from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput, hookimpl


class LettersEnv(BaseTextEnv):
    def step(self, action):
        letters = [c for c in action.lower() if c.isalpha() and c.isascii()]
        return BaseTextEnvStepOutput(reward=sum(c <= "m" for c in letters) / max(1, len(letters)), done=True)


@hookimpl
def register_environments(register):
    register("letters", LettersEnv)
"""

#: Each node declares 2 CPUs: one node cannot hold the run's three actors at the CPU share a single node would give.
NODE_CPUS = 2


def serve_cluster() -> None:
    """Start a head node and a second node, print their address and node ids as one JSON line, then keep them
    until stdin closes."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": NODE_CPUS, "resources": {"head": 1}, "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=NODE_CPUS, resources={"second": 1})
        cluster.wait_for_nodes(timeout=60)
        print(json.dumps({"address": cluster.address, "head": cluster.head_node.node_id, "second": second.node_id}),
              flush=True)
        sys.stdin.read()
    finally:
        cluster.shutdown()


def _clean_env() -> dict[str, str]:
    """This process's environment without Ray's authentication settings: starting the suite's own local cluster set
    ``RAY_AUTH_MODE=token`` here, and the test cluster, whose nodes run with another HOME, has no token."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}


@pytest.fixture
def two_node_cluster(tmp_path):
    """(address, {"head": node id, "second": node id}, HOME of the nodes' processes)."""
    home = tmp_path / "home"
    home.mkdir()
    process = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env={**_clean_env(), "HOME": str(home)}, cwd=tmp_path)
    try:
        line = process.stdout.readline()
        assert line, "the cluster helper exited before starting the cluster"
        info = json.loads(line)
        yield info.pop("address"), info, home
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def test_grpo_on_two_nodes_with_a_policy_worker_on_each(two_node_cluster, tiny_model_path, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    address, node_ids, home = two_node_cluster
    cwd, out, inputs = tmp_path / "cwd", tmp_path / "out", tmp_path / "inputs"
    cwd.mkdir()
    inputs.mkdir()
    (inputs / "letters_plugin.py").write_text(LETTERS_PLUGIN)
    rows = [{"prompt": [{"role": "user", "content": f"Write some words, number {i}."}], "env_class": "letters",
             "reward_spec": {"method": "rule", "ground_truth": ""}} for i in range(16)]
    pq.write_table(pa.Table.from_pylist(rows), inputs / "letters.parquet")
    env = {**_clean_env(), "RAY_ADDRESS": address, "HOME": str(home)}
    run = subprocess.run(
        [SKYRL, "run", "--algo", "grpo", "--plugin", str(inputs / "letters_plugin.py"),
         f"trainer.policy.model.path={tiny_model_path}", f"trainer.output_dir={out}", *FAST,
         f"data.train_data=['{inputs / 'letters.parquet'}']", "trainer.strategy=ddp",
         "trainer.placement.policy_num_nodes=2", "trainer.placement.policy_num_gpus_per_node=1",
         "trainer.max_training_steps=2", "trainer.algorithm.use_kl_loss=false"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    actors = json.loads((out / "actors.json").read_text())
    policy_nodes = {actors[f"policy worker rank {r}"]["node_id"] for r in range(2)}
    assert policy_nodes == set(node_ids.values())  # one on each node of *this* cluster: it joined, not started one
    assert actors["inference engine 0"]["node_id"] in node_ids.values()
    rows = [r for r in read_metrics(out) if "loss/policy" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["grad_norm"] > 0
        assert row["rollout/logprob_diff_mean"] < 1e-4  # step 2 samples from the weights synced after step 1
    # Nothing outside the output folder: no file in the working directory or in the HOME of the driver and of
    # every worker (the nodes' processes run with it), except matplotlib's font cache (the driver draws the plots).
    assert not list(cwd.iterdir())
    written = [p.relative_to(home) for p in home.rglob("*") if p.is_file()]
    assert [p for p in written if p.parts[:2] != (".cache", "matplotlib")] == []


if __name__ == "__main__":
    serve_cluster()
