"""Built-in plugin: generators (the default multi-turn agent loop)."""

from __future__ import annotations

from skyrl_core import hookimpl
from skyrl_core.hookspecs import Register


@hookimpl
def register_generators(register: Register) -> None:
    register("default", "skyrl_core.generator.agent_loop:AgentLoopGenerator",
             description="multi-turn token-in-token-out agent loop")
