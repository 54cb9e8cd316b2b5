"""Dataset builders: the objects registered with ``register_datasets``.

A builder writes a training and a validation file in skyrl's dataset format (see ``docs/datasets.md``) into a
folder. Its options are the fields of the attrs class registered with it as ``config_cls``: they become the
command-line options of ``skyrl data NAME`` (``num_digits`` -> ``--num-digits``) and the config section
``data.<name>`` used when ``skyrl run --env NAME`` builds the data itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import attrs


@attrs.frozen
class DatasetFiles:
    """The files a builder wrote."""

    train: Path
    validation: Path


class DatasetBuilder(ABC):
    """Writes ``train`` and ``validation`` files for one environment."""

    #: Config defaults (dotted keys) that suit this dataset, applied after the algorithm preset.
    config_defaults: dict[str, Any] = {}

    @abstractmethod
    def build(self, output_dir: Path, config: Any) -> DatasetFiles:
        """Write the files into ``output_dir`` (created if needed) and return their paths.

        ``config`` is an instance of the builder's registered ``config_cls`` (or ``None`` without one). Raise
        :class:`skyrl_core.errors.UserError` with a message that says how to fix the problem when the data
        cannot be produced (no network, missing source file).
        """
