"""Checking a placement against the cluster before any actor starts, so an impossible one fails in seconds with
what was asked and what exists, never as a hang on a pending placement group."""

from __future__ import annotations

from typing import Any

from skyrl_core.errors import UserError


def worker_groups(config: Any) -> dict[str, tuple[int, int]]:
    """``role -> (num_nodes, workers per node)`` of every training worker group the run starts."""
    placement, algorithm = config.trainer.placement, config.trainer.algorithm
    groups = {"policy": (placement.policy_num_nodes, placement.policy_num_gpus_per_node)}
    if algorithm.use_kl_loss or algorithm.use_kl_in_reward:
        groups["ref"] = (placement.ref_num_nodes, placement.ref_num_gpus_per_node)
    if config.trainer.critic.model.path is not None:
        groups["critic"] = (placement.critic_num_nodes, placement.critic_num_gpus_per_node)
    return groups


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
    policy than its largest node has, or a worker group on more nodes than are alive. ``gpus_per_node`` lists the
    GPUs of each alive node (all 0: CPU; empty: not known, only the GPU counts are checked)."""
    for role, (nodes, _) in worker_groups(config).items():
        if gpus_per_node and nodes > len(gpus_per_node):
            raise UserError(f"impossible placement: trainer.placement.{role}_num_nodes={nodes} but the Ray cluster has "
                            f"{len(gpus_per_node)} alive node(s). Lower it, or add nodes to the cluster")
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


def cpu_share(cpus_per_node: list[float], num_actors: int, spread: list[tuple[int, int]]) -> float:
    """The CPUs each of ``num_actors`` actors asks for on a cluster without GPUs: the largest share such that they
    all fit on the nodes (a node holds ``floor(cpus / share)`` of them, so a share that fits the cluster's total
    may fit no node), and each group ``(num_nodes, per_node)`` of ``spread`` finds ``num_nodes`` nodes that hold
    ``per_node`` of them each. Less 0.01, so rounding never makes it not fit."""
    def fits(share: float) -> bool:
        slots = [int(cpus / share + 1e-9) for cpus in cpus_per_node]
        return sum(slots) >= num_actors and all(sum(s >= per_node for s in slots) >= nodes
                                                for nodes, per_node in spread)

    candidates = sorted({cpus / k for cpus in cpus_per_node if cpus > 0 for k in range(1, num_actors + 1)},
                        reverse=True)
    best = next((share for share in candidates if fits(share)), 0.0)
    return max(0.01, round(best, 2) - 0.01)


def cluster_nodes() -> list[dict[str, float]]:
    """The resources of every alive Ray node."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]
