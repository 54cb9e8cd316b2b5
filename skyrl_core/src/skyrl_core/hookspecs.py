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

import attrs
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
        ``--env NAME`` finds it. ``config_cls`` becomes ``data.<name>``.

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
        ``config`` is ``trainer.algorithm``. ``config_cls`` becomes the section
        ``trainer.algorithm.estimators.<name>``.

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
        flow). ``config_cls`` becomes ``trainer.algorithm.presets.<name>``.

    Example::

        @hookimpl
        def register_algorithms(register):
            register("cliphigh", AlgorithmPreset(defaults={"trainer.algorithm.eps_clip_high": 0.28}))
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
        ``generator.loops.<name>``.

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
        ``backend_cls`` is a :class:`skyrl_core.weight_sync.base.WeightTransport` subclass (class attributes
        ``device_types`` and ``same_device_ok`` tell ``generator.weight_sync_backend=auto`` where it works).
        ``config_cls`` becomes ``generator.weight_sync.<name>``.

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
        implements :class:`skyrl_core.loggers.Logger`. ``config_cls`` becomes ``trainer.loggers.<name>``.

    Example::

        @hookimpl
        def register_loggers(register):
            register("mlflow", MlflowLogger)
    """




# ---------------------------------------------------------------------------------------------------------------
# The kinds: one record per registration hook. Registry labels, "pip install" hints, config sections and
# selectors, the base-class check and the ``skyrl plugins`` listing are all derived from these records.
# ---------------------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Kind:
    """Everything skyrl knows about one kind of registered component.

    :param name: the registry kind, the hook's name without ``register_`` (``environments``).
    :param label: how one component of the kind is named in messages (``environment``).
    :param selector: the dotted config key that selects a component by name, or ``None`` (datasets follow the env).
    :param section_parent: the dotted config path under which the kind's config sections live.
    :param section_key: a sub-key of ``section_parent`` holding the sections, or ``None`` when they sit directly
        under it (each parent has at most one such kind). The section of ``NAME`` is :meth:`section_path`.
    :param base: ``"module:Class"`` the registered object must be (``shape="instance"``) or subclass
        (``shape="class"``); ``None`` with ``shape="function"``: any callable.
    :param constructor: how skyrl calls the registered object, for messages and docs.
    :param package_pattern: the naming convention of the distributions providing more of this kind
        (``skyrl-env-{name}``): an unknown ``NAME`` says ``pip install`` that name.
    :param packages: skyrl's own plugin distributions providing this kind (hint when there is no pattern).
    """

    name: str
    label: str
    selector: str | None
    section_parent: str
    section_key: str | None
    shape: str
    base: str | None
    constructor: str
    package_pattern: str | None = None
    packages: tuple[str, ...] = ()

    @property
    def hook(self) -> str:
        return f"register_{self.name}"

    @property
    def sections_path(self) -> str:
        """Where this kind's sections live (``trainer.algorithm.estimators``)."""
        return ".".join(p for p in (self.section_parent, self.section_key) if p)

    def section_path(self, name: str) -> str:
        return f"{self.sections_path}.{name}"

    def install_hint(self, name: str | None = None) -> str | None:
        """``pip install ...`` for ``name`` (or for more of the kind), by naming convention; ``None``: no advice."""
        if self.package_pattern is not None:
            package = self.package_pattern.format(name=(name or "<name>").replace("_", "-"))
            return f"pip install {package}"
        if not self.packages:
            return None
        stem = f"skyrl-{(name or '').rstrip('0123456789').replace('_', '-')}"
        if stem in self.packages:
            return f"pip install {stem}"
        return "pip install " + " or ".join(self.packages)


KIND_RECORDS: tuple[Kind, ...] = (
    Kind(name="environments", label="environment", selector="environment.env_class", section_parent="environment",
         section_key=None, shape="class", base="skyrl_core.env.base:BaseTextEnv",
         constructor="env_cls(env_config=SECTION, extras=ROW_EXTRAS)", package_pattern="skyrl-env-{name}"),
    Kind(name="datasets", label="dataset", selector=None, section_parent="data", section_key=None,
         shape="instance", base="skyrl_core.data.builder:DatasetBuilder",
         constructor="builder.build(folder, SECTION)", package_pattern="skyrl-env-{name}"),
    Kind(name="advantage_estimators", label="advantage estimator",
         selector="trainer.algorithm.advantage_estimator", section_parent="trainer.algorithm",
         section_key="estimators", shape="function", base=None,
         constructor="fn(*, token_level_rewards, response_mask, index, values, config, **kw)"),
    Kind(name="policy_losses", label="policy loss", selector="trainer.algorithm.policy_loss_type",
         section_parent="trainer.algorithm", section_key=None, shape="function", base=None,
         constructor="fn(*, log_probs, old_log_probs, advantages, loss_mask, config, **kw)"),
    Kind(name="algorithms", label="algorithm", selector="trainer.algorithm.preset",
         section_parent="trainer.algorithm", section_key="presets", shape="instance",
         base="skyrl_core.algorithms.preset:AlgorithmPreset", constructor="preset.defaults, preset batch hooks",
         package_pattern="skyrl-algo-{name}"),
    Kind(name="inference_backends", label="inference backend", selector="generator.backend",
         section_parent="generator", section_key=None, shape="class",
         base="skyrl_core.inference.base:InferenceEngine",
         constructor="engine_cls(config=SECTION, model_path=, dtype=, seed=, tensor_parallel_size=, ...)",
         packages=("skyrl-vllm", "skyrl-sglang")),
    Kind(name="generators", label="generator", selector="generator.name", section_parent="generator",
         section_key="loops", shape="class", base="skyrl_core.generator.types:Generator",
         constructor="generator_cls(config=SECTION, run_config=, tokenizer=, engine_client=, plugin_manager=)"),
    Kind(name="strategies", label="strategy", selector="trainer.strategy", section_parent="trainer",
         section_key=None, shape="class", base="skyrl_core.strategy.base:Strategy",
         constructor="strategy_cls(config=SECTION, run_config=)", packages=("skyrl-fsdp", "skyrl-deepspeed")),
    Kind(name="weight_sync_backends", label="weight-sync backend", selector="generator.weight_sync_backend",
         section_parent="generator", section_key="weight_sync", shape="class",
         base="skyrl_core.weight_sync.base:WeightTransport",
         constructor="sender_cls(config=SECTION, init_info=) / receiver_cls(config=SECTION, init_info=, rank=)",
         packages=("skyrl-vllm",)),
    Kind(name="loggers", label="logger", selector="trainer.logger", section_parent="trainer", section_key="loggers",
         shape="class", base="skyrl_core.loggers.base:Logger",
         constructor="logger_cls(run_dir=, project_name=, run_name=, config=, section=SECTION)"),
)

#: Kind name -> record.
KIND_BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KIND_RECORDS}
#: Hook name -> registry kind.
REGISTRATION_HOOKS: dict[str, str] = {kind.hook: kind.name for kind in KIND_RECORDS}
KINDS: tuple[str, ...] = tuple(KIND_BY_NAME)
