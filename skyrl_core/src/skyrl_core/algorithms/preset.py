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
    ``hook(batch, config) -> batch`` (``batch`` is a :class:`skyrl_core.trainer.batch.RolloutBatch`).
    """

    defaults: dict[str, Any] = attrs.field(factory=dict)
    description: str = ""
    batch_hooks: tuple[Callable[..., Any], ...] = ()
