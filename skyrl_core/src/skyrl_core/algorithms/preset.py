"""Algorithm presets: what ``skyrl run --algo NAME`` selects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class AlgorithmPreset:
    """Config defaults plus optional batch hooks.

    ``defaults`` maps dotted keys to values (``{"trainer.algorithm.advantage_estimator": "grpo"}``); they apply
    after skyrl's defaults and before the env's, the config file's and the command line's.
    ``batch_hooks`` run in order on every generated training batch, before advantages are computed, as
    ``hook(batch, config) -> batch`` (``batch`` is a :class:`skyrl_core.trainer.batch.RolloutBatch`; a hook may
    edit its tensors, e.g. reward shaping, or return fewer rows with ``batch.select(rows)``).
    ``refill_batches`` (a bool, or ``fn(config) -> bool`` decided once per run) declares that the hooks may drop
    whole prompt groups and asks the trainer to generate more prompts within the step until
    ``trainer.train_batch_size`` groups are kept (at most ``trainer.algorithm.dynamic_sampling.max_sample_batches``
    rounds; see :mod:`skyrl_core.trainer.sampling`).
    ``check`` (``fn(config) -> list[str]``) reports problems of the resolved config, one line each, before
    anything starts, with the other config problems.
    """

    defaults: dict[str, Any] = attrs.field(factory=dict)
    description: str = ""
    batch_hooks: tuple[Callable[..., Any], ...] = ()
    refill_batches: bool | Callable[[Any], bool] = False
    check: Callable[[Any], list[str]] | None = None

    def refills(self, config: Any) -> bool:
        """Whether this run's steps refill their batch (see ``refill_batches``)."""
        return bool(self.refill_batches(config) if callable(self.refill_batches) else self.refill_batches)
