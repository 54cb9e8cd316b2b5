"""The extension points of skyrl: the single source of truth for plugin authors.

Every hook below is a *registration* hook. It is *collected*: skyrl calls the implementation of every installed
plugin once, when the registry of that kind is first needed (in the driver and again in every Ray worker), and
passes a ``register`` callback bound to that plugin::

    register(name, obj, *, config_cls=None, description=None)

``name`` is what users type in the config (``environment.env_class=gsm8k``); ``obj`` is the registered object,
or a ``"package.module:Attribute"`` string imported on first use (keep heavy imports such as torch or vllm out of
``skyrl plugins`` and config resolution this way);
``config_cls`` is an optional attrs class whose fields become settable by dotted keys (see each hook for the
section it lives in); ``description`` is a one-line summary for ``skyrl plugins``. Registering a name that another
plugin already registered for the same kind is an error naming both distributions.

Plugin authors import the marker from the package root::

    from skyrl_core import hookimpl

Implementations may take fewer arguments than the spec (pluggy passes only those they name), so arguments can be
added to a hook later without breaking existing plugins. Arguments are never renamed or removed.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT_NAME = "skyrl"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class Register(Protocol):
    """The callback every registration hook receives."""

    def __call__(
        self,
        name: str,
        obj: Any,
        *,
        config_cls: type | None = None,
        description: str | None = None,
    ) -> None: ...


# ---------------------------------------------------------------------------------------------------------------
# Registration hooks (collected: every plugin contributes)
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def register_environments(register: Register) -> None:
    """Register environment classes, selected by ``environment.env_class`` or a dataset row's ``env_class``.

    Called when the ``environments`` registry is first used: by ``skyrl run`` in the driver and in the generator
    worker, by ``skyrl plugins`` and by ``skyrl_core.registry("environments")``.

    :param register: ``register(name, env_cls, *, config_cls=None, description=None)``. ``env_cls`` is a
        :class:`skyrl_core.BaseTextEnv` subclass. ``config_cls`` (an attrs class) becomes the section
        ``environment.<name>``; an instance of it is passed to the env as ``env_config``.

    Example::

        @hookimpl
        def register_environments(register):
            register("multiply", MultiplyEnv, config_cls=MultiplyConfig, description="n-digit multiplication")
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset builders, used by ``skyrl data NAME`` and by ``skyrl run --env NAME`` without data paths.

    Called when the ``datasets`` registry is first used.

    :param register: ``register(name, builder, *, config_cls=None, description=None)``. ``builder`` is a
        :class:`skyrl_core.data.DatasetBuilder`: it writes ``train`` and ``validation`` files in skyrl's dataset
        format into a folder and declares its command-line options. Register it under the env's name so that
        ``--env NAME`` finds it.

    Example::

        @hookimpl
        def register_datasets(register):
            register("multiply", MultiplyDatasetBuilder(), description="synthetic multiplication problems")
    """


@hookspec
def register_advantage_estimators(register: Register) -> None:
    """Register advantage estimators, selected by ``trainer.algorithm.advantage_estimator``.

    Called when the ``advantage_estimators`` registry is first used (driver).

    :param register: ``register(name, fn, *, config_cls=None, description=None)`` where ``fn`` is called with
        keyword arguments ``fn(*, token_level_rewards, response_mask, index, values, config, **kw) ->
        (advantages, returns)``; tensors are ``[batch, response_tokens]``, ``index`` holds each row's group id and
        ``config`` is ``trainer.algorithm``. ``config_cls`` becomes the section ``trainer.algorithm.<name>``.

    Example::

        @hookimpl
        def register_advantage_estimators(register):
            register("my_adv", my_adv_fn, description="score minus group median")
    """


@hookspec
def register_policy_losses(register: Register) -> None:
    """Register policy losses, selected by ``trainer.algorithm.policy_loss_type``.

    Called when the ``policy_losses`` registry is first used (in every policy worker).

    :param register: ``register(name, fn, *, config_cls=None, description=None)`` where ``fn`` is called as
        ``fn(*, log_probs, old_log_probs, advantages, loss_mask, config, rollout_log_probs=None, **kw) ->
        (token_losses, metrics)``: the per-token loss ``[batch, response_tokens]`` (skyrl applies
        ``loss_reduction``) and a dict of scalar metrics. ``config_cls`` becomes ``trainer.algorithm.<name>``.

    Example::

        @hookimpl
        def register_policy_losses(register):
            register("plain_pg", lambda *, log_probs, advantages, **kw: (-advantages * log_probs, {}))
    """


@hookspec
def register_algorithms(register: Register) -> None:
    """Register algorithm presets, selected by ``skyrl run --algo NAME``.

    Called when the ``algorithms`` registry is first used (driver, while resolving the config).

    :param register: ``register(name, preset, *, config_cls=None, description=None)`` where ``preset`` is a
        :class:`skyrl_core.algorithms.AlgorithmPreset`: config defaults (dotted keys) applied after skyrl's
        defaults and before the user's, plus optional batch hooks run on each generated batch (step 3 of the data
        flow). ``config_cls`` becomes ``trainer.algorithm.<name>``.

    Example::

        @hookimpl
        def register_algorithms(register):
            register("dapo", AlgorithmPreset(defaults={"trainer.algorithm.eps_clip_high": 0.28}))
    """


@hookspec
def register_inference_backends(register: Register) -> None:
    """Register inference engine classes, selected by ``generator.backend``.

    Called when the ``inference_backends`` registry is first used (driver and every engine actor).

    :param register: ``register(name, engine_cls, *, config_cls=None, description=None)`` where ``engine_cls``
        implements :class:`skyrl_core.inference.InferenceEngine`. ``config_cls`` becomes ``generator.<name>``.

    Example::

        @hookimpl
        def register_inference_backends(register):
            register("vllm", VLLMEngine, config_cls=VLLMConfig)
    """


@hookspec
def register_generators(register: Register) -> None:
    """Register rollout generators (the agent loop), selected by ``generator.name``.

    Called when the ``generators`` registry is first used (driver).

    :param register: ``register(name, generator_cls, *, config_cls=None, description=None)`` where
        ``generator_cls`` implements :class:`skyrl_core.generator.Generator`. ``config_cls`` becomes
        ``generator.<name>``.

    Example::

        @hookimpl
        def register_generators(register):
            register("my_agent", MyAgentGenerator)
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register training strategies, selected by ``trainer.strategy``.

    Called when the ``strategies`` registry is first used (driver and every policy/ref/critic worker).

    :param register: ``register(name, strategy_cls, *, config_cls=None, description=None)`` where
        ``strategy_cls`` implements :class:`skyrl_core.strategy.Strategy`. ``config_cls`` becomes
        ``trainer.<name>``.

    Example::

        @hookimpl
        def register_strategies(register):
            register("fsdp2", FSDP2Strategy, config_cls=FSDPConfig)
    """


@hookspec
def register_weight_sync_backends(register: Register) -> None:
    """Register weight-sync transports (policy to inference engines), selected by ``generator.weight_sync_backend``.

    Called when the ``weight_sync_backends`` registry is first used (driver, policy rank 0, engine actors).

    :param register: ``register(name, backend_cls, *, config_cls=None, description=None)`` where
        ``backend_cls`` implements :class:`skyrl_core.weight_sync.WeightSyncBackend`. ``config_cls`` becomes
        ``generator.<name>``.

    Example::

        @hookimpl
        def register_weight_sync_backends(register):
            register("cuda_ipc", CudaIpcWeightSync)
    """


@hookspec
def register_loggers(register: Register) -> None:
    """Register metric sinks, selected by ``trainer.logger`` (a name or a list of names).

    Called when the ``loggers`` registry is first used (driver).

    :param register: ``register(name, logger_cls, *, config_cls=None, description=None)`` where ``logger_cls``
        implements :class:`skyrl_core.loggers.Logger`. ``config_cls`` becomes ``trainer.<name>``.

    Example::

        @hookimpl
        def register_loggers(register):
            register("mlflow", MlflowLogger)
    """


#: Hook name -> registry kind. A kind is the hook's name without ``register_``.
REGISTRATION_HOOKS: dict[str, str] = {
    name: name.removeprefix("register_")
    for name in (
        "register_environments",
        "register_datasets",
        "register_advantage_estimators",
        "register_policy_losses",
        "register_algorithms",
        "register_inference_backends",
        "register_generators",
        "register_strategies",
        "register_weight_sync_backends",
        "register_loggers",
    )
}
KINDS: tuple[str, ...] = tuple(REGISTRATION_HOOKS.values())
