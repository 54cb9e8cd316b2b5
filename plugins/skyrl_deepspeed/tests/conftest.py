"""The 2-rank strategy conformance harness lives with the fsdp plugin's tests (one copy for both strategies)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "skyrl_fsdp" / "tests"))
