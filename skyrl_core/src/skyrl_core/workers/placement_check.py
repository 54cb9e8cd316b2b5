"""Checking a placement against the cluster before any actor starts, so an impossible one fails in seconds with
what was asked and what exists, never as a hang on a pending placement group."""

from __future__ import annotations

from typing import Any

from skyrl_core.errors import UserError


def gpus_needed(config: Any) -> dict[str, int]:
    """GPUs each part of the run asks for (only with GPUs in the cluster; without, a "GPU" is a CPU share).

    Colocated, every actor shares the policy's GPUs; otherwise each training worker and each engine GPU is its own.
    """
    placement, generator, algorithm = config.trainer.placement, config.generator, config.trainer.algorithm
    policy = placement.policy_num_nodes * placement.policy_num_gpus_per_node
    if placement.colocate_all:
        return {"policy (shared by every actor, colocate_all=true)": policy}
    needed = {"policy": policy,
              "engines": generator.num_inference_engines * generator.inference_engine_tensor_parallel_size}
    if algorithm.use_kl_loss or algorithm.use_kl_in_reward:
        needed["ref"] = placement.ref_num_nodes * placement.ref_num_gpus_per_node
    if config.trainer.critic.model.path is not None:
        needed["critic"] = placement.critic_num_nodes * placement.critic_num_gpus_per_node
    return needed


def check_placement(config: Any, gpus_per_node: list[int]) -> None:
    """Refuse a placement the cluster cannot hold: more GPUs in total than it has, or more GPUs per node for the
    policy than its largest node has. ``gpus_per_node`` lists the GPUs of each alive node (empty or all 0: CPU)."""
    total = sum(gpus_per_node)
    if total == 0:
        return
    needed = gpus_needed(config)
    placement = config.trainer.placement
    asked = " + ".join(f"{n} {what}" for what, n in needed.items())
    problems = []
    if sum(needed.values()) > total:
        problems.append(f"the run asks for {sum(needed.values())} GPUs ({asked}) and the cluster has {total} "
                        f"({len(gpus_per_node)} node(s) with {', '.join(map(str, gpus_per_node))})")
    if placement.policy_num_gpus_per_node > max(gpus_per_node):
        problems.append(f"trainer.placement.policy_num_gpus_per_node={placement.policy_num_gpus_per_node} but the "
                        f"largest node has {max(gpus_per_node)} GPUs")
    if problems:
        raise UserError("impossible placement: " + "; ".join(problems) + ". Lower the GPU counts in "
                        "trainer.placement.* / generator.num_inference_engines, set colocate_all=true, or add nodes")


def cluster_gpus_per_node() -> list[int]:
    """GPUs of every alive Ray node."""
    import ray

    return [int(node["Resources"].get("GPU", 0)) for node in ray.nodes() if node.get("Alive")]
