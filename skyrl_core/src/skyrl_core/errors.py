"""Exceptions that reach the user.

Every :class:`UserError` is printed as one clear message by the CLI and exits with status 2, without a traceback
(``--debug`` shows it).
"""

from __future__ import annotations


class SkyrlError(Exception):
    """Base class of every skyrl exception; the CLI prints its message and exits with ``exit_code``."""

    exit_code = 1


class UserError(SkyrlError):
    """A problem the user can fix (bad config, unknown name, bad data, missing file). Exit status 2."""

    exit_code = 2


class ConfigError(UserError):
    """The configuration is invalid. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is invalid:\n{lines}")


class DiskWriteError(UserError):
    """A file of the run (a checkpoint, ``metrics.jsonl``, samples) could not be written: disk full, over quota,
    read-only. The run stops; every file written before stays complete."""


class PluginLoadError(UserError):
    """An installed plugin failed to import."""


class DuplicateNameError(UserError):
    """Two plugins registered the same name for the same kind."""


class UnknownNameError(UserError):
    """A name was asked for that no plugin registered."""


class DataError(UserError):
    """A dataset file or row is malformed."""
