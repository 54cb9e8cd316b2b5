"""Registries: one read-only name -> object mapping per kind, filled by the registration hooks."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from skyrl_core.errors import DuplicateNameError, PluginLoadError, UnknownNameError

_UNLOADED = object()

#: How each kind is named in messages.
KIND_LABELS = {
    "environments": "environment",
    "datasets": "dataset",
    "advantage_estimators": "advantage estimator",
    "policy_losses": "policy loss",
    "algorithms": "algorithm",
    "inference_backends": "inference backend",
    "generators": "generator",
    "strategies": "strategy",
    "weight_sync_backends": "weight-sync backend",
    "loggers": "logger",
}

#: Where to find more of a kind, shown with unknown names.
KIND_HINTS = {
    "environments": "pip install skyrl-env-<name>",
    "datasets": "pip install skyrl-env-<name>",
    "algorithms": "pip install skyrl-algo-<name>",
    "inference_backends": "pip install skyrl-vllm or skyrl-sglang",
    "strategies": "pip install skyrl-fsdp or skyrl-deepspeed",
}


@attrs.frozen
class PluginInfo:
    """Where a plugin came from."""

    name: str
    distribution: str
    version: str
    entry_point: str
    builtin: bool = False

    def label(self) -> str:
        return f"{self.distribution} {self.version}"


@attrs.define
class Registration:
    """One registered name.

    ``target`` is the registered object, or a ``"package.module:Attribute"`` string that is imported the first
    time :attr:`obj` is read, so listing plugins or resolving a config never imports torch, vllm or deepspeed.
    """

    kind: str
    name: str
    target: Any
    plugin: PluginInfo
    config_cls: type | None = None
    description: str | None = None
    _loaded: Any = attrs.field(default=_UNLOADED, init=False, repr=False, eq=False)

    @property
    def is_lazy(self) -> bool:
        return isinstance(self.target, str) and ":" in self.target

    @property
    def obj(self) -> Any:
        if not self.is_lazy:
            return self.target
        if self._loaded is _UNLOADED:
            module_name, _, attribute = self.target.partition(":")
            try:
                value: Any = importlib.import_module(module_name)
                for part in attribute.split("."):
                    value = getattr(value, part)
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is reported the same way
                raise PluginLoadError(
                    f"{KIND_LABELS.get(self.kind, self.kind)} '{self.name}' of {self.plugin.label()} "
                    f"({self.plugin.entry_point}) could not be loaded from '{self.target}': "
                    f"{type(exc).__name__}: {exc}. Reinstall {self.plugin.distribution} or fix its dependencies."
                ) from exc
            self._loaded = value
        return self._loaded


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The closest candidate to ``name``, if any is close enough."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


class Registry(Mapping[str, Any]):
    """Name -> registered object for one kind. Read-only for users; filled through :meth:`add`."""

    def __init__(self, kind: str, load_failures: list[str] | None = None):
        self.kind = kind
        self._entries: dict[str, Registration] = {}
        self._load_failures = load_failures or []

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def add(self, registration: Registration) -> None:
        existing = self._entries.get(registration.name)
        if existing is not None:
            raise DuplicateNameError(
                f"{self.label} '{registration.name}' is registered twice: by {existing.plugin.label()} "
                f"({existing.plugin.entry_point}) and by {registration.plugin.label()} "
                f"({registration.plugin.entry_point}). Uninstall one of them, or exclude it with "
                f"SKYRL_LOAD_PLUGINS."
            )
        self._entries[registration.name] = registration

    def entry(self, name: str) -> Registration:
        """The registration of ``name``; an :class:`UnknownNameError` with suggestions when there is none."""
        try:
            return self._entries[name]
        except KeyError:
            raise self.unknown(name) from None

    def unknown(self, name: str) -> UnknownNameError:
        available = sorted(self._entries)
        parts = [f"unknown {self.label} '{name}'"]
        suggestion = did_you_mean(name, available)
        if suggestion:
            parts[0] += f"; did you mean '{suggestion}'?"
        parts.append(f"Available: {', '.join(available) if available else '(none)'}")
        hint = KIND_HINTS.get(self.kind)
        if hint:
            parts[-1] += f" (more: {hint})"
        for failure in self._load_failures:
            parts.append(f"Note: {failure}")
        head = parts[0] + ("" if parts[0].endswith("?") else ".") + " " + parts[1]
        return UnknownNameError(head + ("\n" + "\n".join(parts[2:]) if parts[2:] else ""))

    def __getitem__(self, name: str) -> Any:
        return self.entry(name).obj

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, default: Any = None) -> Any:
        entry = self._entries.get(name)
        return default if entry is None else entry.obj

    def entries(self) -> list[Registration]:
        return [self._entries[n] for n in sorted(self._entries)]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"
