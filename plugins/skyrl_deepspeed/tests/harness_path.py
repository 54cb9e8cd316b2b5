"""The 2-rank strategy conformance harness lives with the skyrl-fsdp tests; one copy serves both strategies."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

HARNESS_DIR = Path(__file__).resolve().parents[2] / "skyrl_fsdp" / "tests"


def load_conformance_harness() -> ModuleType:
    """``strategy_conformance``, importable by name here and in the processes it spawns (they inherit sys.path)."""
    if str(HARNESS_DIR) not in sys.path:
        sys.path.insert(0, str(HARNESS_DIR))
    return importlib.import_module("strategy_conformance")
