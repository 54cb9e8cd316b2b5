"""All the actors of one run, created together so the placement can share devices between them."""

from __future__ import annotations

from typing import Any

import torch

from skyrl_core.inference.client import EngineClient
from skyrl_core.workers.groups import WorkerGroup, make_engines, make_placement


class RunActors:
    """Policy group, optional ref group, inference engines, and the client that spreads requests over them."""

    def __init__(self, config: Any, config_dict: dict[str, Any], pm: Any, cpu_count: int):
        import ray

        self.config, self.pm = config, pm
        placement_cfg = config.trainer.placement
        policy_world = placement_cfg.policy_num_nodes * placement_cfg.policy_num_gpus_per_node
        algorithm = config.trainer.algorithm
        ref_world = placement_cfg.ref_num_nodes * placement_cfg.ref_num_gpus_per_node
        needs_ref = algorithm.use_kl_loss or algorithm.use_kl_in_reward
        num_engines = config.generator.num_inference_engines
        placement = make_placement(config, policy_world + (ref_world if needs_ref else 0) + num_engines)
        self.colocated = placement_cfg.colocate_all
        self.policy = WorkerGroup(role="policy", config=config, config_dict=config_dict, world_size=policy_world,
                                  placement=placement, num_threads=max(1, cpu_count // policy_world))
        self.ref = (WorkerGroup(role="ref", config=config, config_dict=config_dict, world_size=ref_world,
                                placement=placement, num_threads=max(1, cpu_count // ref_world))
                    if needs_ref else None)
        self.engines = make_engines(config, config_dict, placement, num_threads=max(1, cpu_count // num_engines))
        self.engine_client = EngineClient(self.engines, remote=True)
        self._asleep = False
        self._ray = ray

    def sleep_engines(self) -> None:
        if self.colocated and not self._asleep:
            self._ray.get([e.sleep.remote() for e in self.engines])
            self._asleep = True

    def wake_engines(self) -> None:
        if self._asleep:
            self._ray.get([e.wake_up.remote() for e in self.engines])
            self._asleep = False

    def compute_logprobs(self, group: WorkerGroup, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows split evenly over the group's workers, results concatenated in row order."""
        rows = inputs["sequences"].shape[0]
        bounds = [rows * w // group.world_size for w in range(group.world_size + 1)]
        shards = [({k: v[bounds[w] : bounds[w + 1]] for k, v in inputs.items()},) for w in range(group.world_size)]
        return torch.cat(group.run_each("compute_logprobs", shards))

    def shutdown(self) -> None:
        for actor in [*self.policy.actors, *(self.ref.actors if self.ref else []), *self.engines]:
            self._ray.kill(actor)
