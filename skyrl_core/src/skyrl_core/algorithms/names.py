"""The accepted values of the algorithm's enumerated keys, kept free of torch so config checks stay light."""

from __future__ import annotations

KL_ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3", "abs")
KL_CONTROLLER_TYPES: tuple[str, ...] = ("fixed", "adaptive")
TIS_RATIO_TYPES: tuple[str | None, ...] = (None, "token", "sequence")
SEQUENCE_MASK_METRICS: tuple[str | None, ...] = (None, "geometric", "product")
