"""Rollout generators: the contract (:class:`Generator`) and the default multi-turn agent loop."""

from skyrl_core.generator.agent_loop import AgentLoopGenerator
from skyrl_core.generator.types import Generator, GeneratorInput, GeneratorOutput, sampling_params_from_config

__all__ = ["AgentLoopGenerator", "Generator", "GeneratorInput", "GeneratorOutput", "sampling_params_from_config"]
