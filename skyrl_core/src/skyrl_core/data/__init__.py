"""Datasets: builders, reading and validating rows, the resumable dataloader."""

from skyrl_core.data.builder import DatasetBuilder, DatasetFiles

__all__ = ["DatasetBuilder", "DatasetFiles"]
