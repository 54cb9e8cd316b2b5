"""Creating the Ray actors of a run: the policy/ref worker groups and the inference engines.

Placement: with GPUs, ``colocate_all`` puts every actor in one placement group of
``policy_num_nodes * policy_num_gpus_per_node`` GPU bundles and gives each a fraction of its bundle's GPU, so they
time-share the devices; without it, each actor asks for whole GPUs. Without GPUs a "GPU" means one process on a
fractional CPU share, small enough that the actors fit on the nodes (not just in the cluster's total), and a group
on ``num_nodes > 1`` nodes gets a ``STRICT_SPREAD`` placement group with one bundle per node, so its workers sit on
that many different nodes. Every actor gets as many torch threads as there are cores for the processes that
compute at the same moment (the loop never runs two phases at once).
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from skyrl_core.errors import UserError
from skyrl_core.workers.placement_check import check_placement, cluster_nodes, cpu_share, worker_groups


@attrs.frozen
class Placement:
    """Ray resource options for the actors of one run."""

    use_gpu: bool
    cpu_per_actor: float
    pg: Any = None

    def options(self, index: int, gpu_fraction: float) -> dict[str, Any]:
        if not self.use_gpu:
            return {"num_cpus": self.cpu_per_actor, "num_gpus": 0}
        if self.pg is None:
            return {"num_cpus": self.cpu_per_actor, "num_gpus": 1}
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        strategy = PlacementGroupSchedulingStrategy(placement_group=self.pg, placement_group_bundle_index=index)
        return {"num_cpus": self.cpu_per_actor, "num_gpus": gpu_fraction, "scheduling_strategy": strategy}

    def group_options(self, num_nodes: int, world_size: int, gpu_fraction: float) -> list[dict[str, Any]]:
        """The options of each rank of a worker group on ``num_nodes`` nodes. Without GPUs and on more than one
        node: one ``STRICT_SPREAD`` bundle per node, ``world_size / num_nodes`` ranks in each (in rank order)."""
        if self.use_gpu or num_nodes == 1:
            return [self.options(rank, gpu_fraction) for rank in range(world_size)]
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        per_node = world_size // num_nodes
        pg = ready_placement_group([{"CPU": self.cpu_per_actor * per_node}] * num_nodes, strategy="STRICT_SPREAD")
        return [{"num_cpus": self.cpu_per_actor, "num_gpus": 0, "scheduling_strategy": PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=rank // per_node)} for rank in range(world_size)]


def make_placement(config: Any, num_actors: int) -> Placement:
    nodes = cluster_nodes()
    gpus = sum(int(node.get("GPU", 0)) for node in nodes)
    check_placement(config, [int(node.get("GPU", 0)) for node in nodes])
    if gpus == 0:
        spread = [group for group in worker_groups(config).values() if group[0] > 1]
        return Placement(use_gpu=False,
                         cpu_per_actor=cpu_share([node.get("CPU", 0.0) for node in nodes], num_actors, spread))
    cpus = sum(node.get("CPU", 0.0) for node in nodes)
    cpu_per_gpu_actor = min(1.0, max(0.01, round(cpus / max(1, num_actors), 2) - 0.01))
    placement = config.trainer.placement
    if not placement.colocate_all:
        return Placement(use_gpu=True, cpu_per_actor=cpu_per_gpu_actor)
    bundles = placement.policy_num_nodes * placement.policy_num_gpus_per_node
    engines_gpus = config.generator.num_inference_engines * config.generator.inference_engine_tensor_parallel_size
    if engines_gpus != bundles:
        raise UserError(
            f"with trainer.placement.colocate_all=true the engines must use as many GPUs as the policy: "
            f"generator.num_inference_engines * inference_engine_tensor_parallel_size = {engines_gpus}, "
            f"policy_num_nodes * policy_num_gpus_per_node = {bundles}. Make them equal, or set colocate_all=false."
        )
    return Placement(use_gpu=True, cpu_per_actor=min(1.0, 1.0 / 4),
                     pg=ready_placement_group([{"GPU": 1, "CPU": 1}] * bundles, strategy="PACK"))


def ready_placement_group(bundles: list[dict[str, float]], strategy: str) -> Any:
    import ray

    pg = ray.util.placement_group(bundles, strategy=strategy)
    ray.get(pg.ready(), timeout=float(os.environ.get("SKYRL_RAY_PG_TIMEOUT_S", "600")))
    return pg


class WorkerGroup:
    """``world_size`` TrainWorker actors forming one torch.distributed group.

    Rows are dispatched by data-parallel rank (:attr:`meshes`): ranks with the same ``dp_rank`` get the same
    arguments; results come back from the first rank of each data-parallel slice, in ``dp_rank`` order.
    """

    def __init__(self, *, role: str, config: Any, config_dict: dict[str, Any], world_size: int,
                 placement: Placement, num_threads: int, num_nodes: int = 1):
        import ray

        from skyrl_core.workers.train_worker import TrainWorker

        actor_cls = ray.remote(TrainWorker)
        self.role = role
        self.world_size = world_size
        self.actors = [
            actor_cls.options(**options).remote(
                config=config_dict, role=role, rank=rank, world_size=world_size, num_threads=num_threads
            )
            for rank, options in enumerate(placement.group_options(num_nodes, world_size, 0.2))
        ]
        addr, port = ray.get(self.actors[0].free_address.remote())
        self.meshes = ray.get([a.setup.remote(addr, port) for a in self.actors])
        self.dp_size = self.meshes[0].dp_size

    def run(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """The same call on every rank; every rank's result."""
        import ray

        return ray.get([getattr(a, method).remote(*args, **kwargs) for a in self.actors])

    def offload(self, *, model: bool, optimizer: bool) -> None:
        self.run("offload", model, optimizer)

    def onload(self, *, model: bool, optimizer: bool) -> None:
        self.run("onload", model, optimizer)

    def run_data_parallel(self, method: str, per_dp_args: list[tuple[Any, ...]]) -> list[Any]:
        """``per_dp_args[d]`` to every rank of data-parallel slice ``d``; one result per slice."""
        import ray

        if len(per_dp_args) != self.dp_size:
            raise ValueError(f"{len(per_dp_args)} argument sets for {self.dp_size} data-parallel ranks")
        refs = [getattr(a, method).remote(*per_dp_args[m.dp_rank]) for a, m in zip(self.actors, self.meshes)]
        results = ray.get(refs)
        first: dict[int, Any] = {}
        for mesh, result in zip(self.meshes, results, strict=True):
            first.setdefault(mesh.dp_rank, result)
        return [first[d] for d in range(self.dp_size)]


def make_engines(config: Any, config_dict: dict[str, Any], placement: Placement, num_threads: int) -> list[Any]:
    import ray

    from skyrl_core.workers.engine_actor import EngineActor

    actor_cls = ray.remote(EngineActor)
    engines = [
        actor_cls.options(**placement.options(i, 0.2)).remote(config=config_dict, index=i, num_threads=num_threads)
        for i in range(config.generator.num_inference_engines)
    ]
    ray.get([e.num_receivers.remote() for e in engines])  # surfaces construction errors now
    return engines
