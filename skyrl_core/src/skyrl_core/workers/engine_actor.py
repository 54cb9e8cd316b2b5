"""An inference engine inside a Ray actor: generation, sleep/wake and the receiving side of weight sync."""

from __future__ import annotations

from typing import Any

from skyrl_core.workers.setup import load_worker_config, set_threads


class EngineActor:
    """Wraps the engine of ``generator.backend``; one per ``generator.num_inference_engines``."""

    def __init__(self, *, config: dict[str, Any], index: int, num_threads: int):
        set_threads(num_threads)
        from skyrl_core.config.loader import component_section

        self.config, self.pm = load_worker_config(config)
        generator, trainer = self.config.generator, self.config.trainer
        engine_cls = self.pm.registry("inference_backends")[generator.backend]
        dtype = generator.model_dtype if trainer.bf16 else "float32"
        self.engine = engine_cls(
            model_path=trainer.policy.model.path,
            dtype=dtype,
            seed=trainer.seed + 1000 * (index + 1),
            config=component_section(generator, generator.backend, "inference_backends", self.pm),
            **dict(generator.engine_init_kwargs),
        )
        self.index = index
        self._sync: Any = None

    def generate(self, requests: list[Any]) -> list[Any]:
        return self.engine.generate(requests)

    def sleep(self) -> None:
        self.engine.sleep()

    def wake_up(self) -> None:
        self.engine.wake_up()

    def parameter_specs(self) -> list[tuple[str, tuple[int, ...], str]]:
        return self.engine.parameter_specs()

    def state_dict(self) -> dict[str, Any]:
        return self.engine.state_dict()

    def init_weight_sync(self, backend: str, master_addr: str, master_port: int, num_receivers: int) -> None:
        from skyrl_core.config.loader import component_section

        section = component_section(self.config.generator, backend, "weight_sync_backends", self.pm)
        self._sync = self.pm.registry("weight_sync_backends")[backend](section=section)
        self._sync.init_receiver(
            master_addr=master_addr, master_port=master_port, rank=self.index + 1, num_receivers=num_receivers
        )

    def receive_weights(self, specs: list[tuple[str, tuple[int, ...], str]], payload: Any = None) -> None:
        self.engine.load_weights(self._sync.receive(specs, payload))

    def shutdown(self) -> None:
        self.engine.shutdown()
