"""All the actors of one run, created together so the placement can share devices between them."""

from __future__ import annotations

from typing import Any

import torch

from skyrl_core.inference.client import EngineClient
from skyrl_core.trainer.faults import ActorDirectory
from skyrl_core.trainer.train_batch import TrainingBatch, split_rows
from skyrl_core.workers.groups import WorkerGroup, make_engines, make_placement
from skyrl_core.workers.placement_check import worker_groups


class RunActors:
    """Policy group, optional ref group, inference engines, and the client that spreads requests over them."""

    def __init__(self, config: Any, config_dict: dict[str, Any], pm: Any, cpu_count: int):
        groups = worker_groups(config)
        num_engines = config.generator.num_inference_engines
        placement = make_placement(config, sum(nodes * per_node for nodes, per_node in groups.values()) + num_engines)
        self.config, self.pm = config, pm
        self.colocated = config.trainer.placement.colocate_all
        made = {role: WorkerGroup(role=role, config=config, config_dict=config_dict, world_size=nodes * per_node,
                                  num_nodes=nodes, placement=placement,
                                  num_threads=max(1, cpu_count // (nodes * per_node)))
                for role, (nodes, per_node) in groups.items()}
        self.policy, self.ref, self.critic = made["policy"], made.get("ref"), made.get("critic")
        self.engines = make_engines(config, config_dict, placement, num_threads=max(1, cpu_count // num_engines))
        self.engine_client = EngineClient(self.engines)
        self.directory = ActorDirectory()
        for group in self.train_groups:
            self.directory.add(group.actors, [f"{group.role} worker rank {r}" for r in range(group.world_size)])
        self.directory.add(self.engines, [f"inference engine {i}" for i in range(len(self.engines))])

    @property
    def train_groups(self) -> list[WorkerGroup]:
        """Every training worker group: policy first, then ref and critic when the run has them."""
        return [g for g in (self.policy, self.ref, self.critic) if g is not None]

    def compute_logprobs(self, group: WorkerGroup, batch: TrainingBatch, method: str = "compute_logprobs"
                         ) -> torch.Tensor:
        """Rows split evenly over the group's data-parallel ranks, results concatenated in row order."""
        shards = [(part,) for part in split_rows(batch.forward_inputs(), group.dp_size)]
        return torch.cat(group.run_data_parallel(method, shards))

    def call_engines(self, method: str, *args: Any) -> list[Any]:
        import ray

        return ray.get([getattr(engine, method).remote(*args) for engine in self.engines])

    def shutdown(self) -> None:
        import ray

        for actor in [*(a for g in self.train_groups for a in g.actors), *self.engines]:
            ray.kill(actor)
