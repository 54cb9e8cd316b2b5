"""Registries: one read-only name -> object mapping per kind, filled by the registration hooks."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from skyrl_core.errors import DuplicateNameError, PluginLoadError, UnknownNameError
from skyrl_core.hookspecs import KIND_BY_NAME, Kind

_UNLOADED = object()


def label_of(kind: str) -> str:
    """How one component of ``kind`` is named in messages (``environment``)."""
    record = KIND_BY_NAME.get(kind)
    return record.label if record else kind


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
        """The registered object (imported on first use when lazy), checked against its kind's base class."""
        if self._loaded is _UNLOADED:
            value = self._import() if self.is_lazy else self.target
            problem = shape_problem(KIND_BY_NAME.get(self.kind), value)
            if problem:
                raise PluginLoadError(
                    f"{label_of(self.kind)} '{self.name}' of {self.plugin.label()} ({self.plugin.entry_point}) "
                    f"{problem}. Fix the plugin's registration, or exclude it with SKYRL_LOAD_PLUGINS."
                )
            self._loaded = value
        return self._loaded

    def _import(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        try:
            value: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                value = getattr(value, part)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is reported the same way
            raise PluginLoadError(
                f"{label_of(self.kind)} '{self.name}' of {self.plugin.label()} "
                f"({self.plugin.entry_point}) could not be loaded from '{self.target}': "
                f"{type(exc).__name__}: {exc}. Reinstall {self.plugin.distribution} or fix its dependencies."
            ) from exc
        return value


def _import_base(path: str) -> type:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def shape_problem(kind: Kind | None, value: Any) -> str | None:
    """Why ``value`` is not what its kind expects (``None`` when it is): a subclass, an instance or a callable."""
    if kind is None:
        return None
    if kind.shape == "function":
        return None if callable(value) else f"is {value!r}, not a function"
    base = _import_base(kind.base) if kind.base else object
    if kind.shape == "class":
        if isinstance(value, type) and issubclass(value, base):
            return None
        return f"is {value!r}, not a subclass of {base.__module__}.{base.__qualname__}"
    if isinstance(value, base):
        return None
    return f"is {value!r}, not an instance of {base.__module__}.{base.__qualname__}"


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
        return label_of(self.kind)

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
        """``unknown <label> 'NAME'[; did you mean ...?]. Available: ... (more: pip install ...)``."""
        available = sorted(self._entries)
        head = f"unknown {self.label} '{name}'"
        suggestion = did_you_mean(name, available)
        head += f"; did you mean '{suggestion}'?" if suggestion else "."
        head += f" Available: {', '.join(available) if available else '(none)'}"
        record = KIND_BY_NAME.get(self.kind)
        hint = record.install_hint(name) if record else None
        if hint:
            specific = hint != record.install_hint()
            head += f" (to install '{name}': {hint})" if specific else f" (more: {hint})"
        notes = [f"Note: {failure}" for failure in self._load_failures]
        return UnknownNameError("\n".join([head, *notes]))

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
