"""Secrets never reach the screen or the run folder.

A name is secret when its last word ends with ``key``, ``token``, ``secret`` or ``password`` (``api_key``,
``hf_token``, ``WANDB_API_KEY``, ``apikey``) or any word is ``secret``/``password`` (``secret_name``); words are split
on ``_``, ``-``, ``.``. So ``max_num_batched_tokens`` or ``append_eos_token_after_stop_str`` are not secrets.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd")
_ALWAYS_SECRET = {"secret", "password", "passwd"}


def is_secret_name(name: str) -> bool:
    parts = [p for p in re.split(r"[_\-.\s]+", name.lower()) if p]
    return bool(parts) and (parts[-1].endswith(_SECRET_WORDS) or any(p in _ALWAYS_SECRET for p in parts))


def redact(tree: Any) -> Any:
    """A copy of ``tree`` (dicts and lists) with secret values replaced by ``***``."""
    if isinstance(tree, dict):
        return {
            k: (REDACTED if is_secret_name(str(k)) and v not in (None, "") and not isinstance(v, dict) else redact(v))
            for k, v in tree.items()
        }
    if isinstance(tree, list):
        return [redact(v) for v in tree]
    return tree
