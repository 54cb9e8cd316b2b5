"""The plugin manager: built-in plugins, entry points of group ``skyrl`` loaded one at a time, plain-file plugins.

Environment variables (all documented in ``docs/plugins/writing-plugins.md``):

- ``SKYRL_LOAD_PLUGINS=dist-a,dist-b``: load only these distributions' entry points (empty: none; unset: all).
- ``SKYRL_STRICT_PLUGINS=1``: a plugin that fails to import is an error instead of a warning.
- ``SKYRL_TRACE_PLUGINS=1``: print every hook call, its arguments and results to stderr.
- ``SKYRL_PLUGIN_FILES=a.py:b.py``: plain-file plugins (set by ``skyrl run --plugin``; how they reach Ray workers).
- ``SKYRL_PLUGIN_SOURCES``: JSON ``{path: source}`` of those files, so a worker on another node without the file
  writes it to a local cache folder and imports it under the same module name.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as md
import json
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pluggy

from skyrl_core import hookspecs
from skyrl_core.errors import PluginLoadError, UserError
from skyrl_core.registry import PluginInfo, Registration, Registry

ENTRY_POINT_GROUP = "skyrl"
PLUGIN_FILES_ENV = "SKYRL_PLUGIN_FILES"
PLUGIN_SOURCES_ENV = "SKYRL_PLUGIN_SOURCES"

#: Modules of skyrl-core that register the built-ins through the same hooks as any plugin.
DEFAULT_PLUGINS = (
    "skyrl_core.default_plugins.algorithms",
    "skyrl_core.default_plugins.inference",
    "skyrl_core.default_plugins.generators",
    "skyrl_core.default_plugins.strategies",
    "skyrl_core.default_plugins.weight_sync",
    "skyrl_core.default_plugins.loggers",
)


def _materialize(path: str, source: str) -> str:
    """Write a plugin file's source to a per-user cache folder (same file name, so the same module name)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = Path(os.environ.get("SKYRL_CACHE_DIR", "~/.cache/skyrl")).expanduser() / "plugin_files" / digest
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(path).name
    target.write_text(source)
    return str(target)


class PluginLoadWarning(UserWarning):
    """A plugin failed to import and was skipped."""


def _core_version() -> str:
    try:
        return md.version("skyrl-core")
    except md.PackageNotFoundError:
        return "0+unknown"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginManager:
    """skyrl's wrapper around :class:`pluggy.PluginManager`, holding where each plugin came from."""

    def __init__(self, *, entry_points: bool = True, strict: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.strict = _env_flag("SKYRL_STRICT_PLUGINS") if strict is None else strict
        self.plugins: dict[str, PluginInfo] = {}
        self.failures: list[tuple[PluginInfo, str]] = []
        self._registries: dict[str, Registry] = {}
        if _env_flag("SKYRL_TRACE_PLUGINS"):
            self._enable_tracing()
        core = _core_version()
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            self.add(module, PluginInfo(module_name, "skyrl-core", core, f"builtin:{module_name}", builtin=True))
        if entry_points:
            self.load_entry_points()
        sources = json.loads(os.environ.get(PLUGIN_SOURCES_ENV) or "{}")
        for path in filter(None, os.environ.get(PLUGIN_FILES_ENV, "").split(os.pathsep)):
            if not Path(path).is_file() and path in sources:
                path = _materialize(path, sources[path])
            self.load_file(path)

    # -- loading ------------------------------------------------------------------------------------------------

    def add(self, plugin: Any, info: PluginInfo) -> None:
        """Register ``plugin`` (a module or object with hookimpls) under ``info.name``."""
        if info.name in self.plugins:
            return
        self.pm.register(plugin, name=info.name)
        self.plugins[info.name] = info
        self.pm.check_pending()
        self._registries.clear()

    def remove(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.plugins.pop(name, None)
        self._registries.clear()

    def load_entry_points(self) -> None:
        """Import each entry point of group ``skyrl`` on its own, honouring ``SKYRL_LOAD_PLUGINS``."""
        allow = os.environ.get("SKYRL_LOAD_PLUGINS")
        allowed = None if allow is None else {a.strip() for a in allow.split(",") if a.strip()}
        seen: set[str] = set()
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "?"
            if allowed is not None and dist not in allowed and dist.replace("_", "-") not in allowed:
                continue
            key = f"{dist}:{ep.name}"
            if key in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(key)
            info = PluginInfo(key, dist, version, f"{ENTRY_POINT_GROUP}:{ep.name} -> {ep.value}")
            try:
                module = ep.load()
                self.add(module, info)
            except Exception as exc:  # noqa: BLE001 - any import failure of a third-party plugin is reported
                self._report_failure(info, exc)

    def load_file(self, path: str | os.PathLike[str]) -> ModuleType:
        """Register a plain Python file as a plugin, importable by module name (so Ray workers can import it)."""
        file = Path(path).expanduser().resolve()
        if not file.is_file() or file.suffix != ".py":
            raise UserError(f"plugin file '{path}' does not exist or is not a .py file; pass --plugin PATH/TO/FILE.py")
        folder = str(file.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            module = importlib.import_module(file.stem)
        except Exception as exc:
            raise PluginLoadError(
                f"plugin file '{file}' failed to import: {type(exc).__name__}: {exc}. Fix the file, "
                f"or run without --plugin {path}."
            ) from exc
        try:
            self.add(module, PluginInfo(f"file:{file}", str(file), "file", f"file:{file}"))
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(
                f"plugin file '{file}' is invalid: {exc}. Hook names are listed in docs/plugins/hooks.md."
            ) from exc
        return module

    def _report_failure(self, info: PluginInfo, exc: Exception) -> None:
        message = (
            f"Plugin '{info.distribution}' {info.version} (entry point {info.entry_point}) failed to import: "
            f"{type(exc).__name__}: {exc}. Reinstall it (pip install --force-reinstall {info.distribution}), "
            f"or exclude it with SKYRL_LOAD_PLUGINS."
        )
        if self.strict:
            raise PluginLoadError(message + " (SKYRL_STRICT_PLUGINS=1 makes this an error.)") from exc
        self.failures.append((info, message))
        warnings.warn(message, PluginLoadWarning, stacklevel=2)

    def _enable_tracing(self) -> None:
        def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
            names = ", ".join(i.plugin_name for i in impls)
            print(f"[skyrl trace] {hook_name}({', '.join(kwargs)}) -> impls: {names}", file=sys.stderr)

        def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
            print(f"[skyrl trace] {hook_name} returned {outcome.get_result()!r}", file=sys.stderr)

        self.pm.add_hookcall_monitoring(before, after)

    # -- registries ---------------------------------------------------------------------------------------------

    def registry(self, kind: str) -> Registry:
        """The registry of ``kind``, built on first use by calling its hook once per plugin."""
        if kind not in hookspecs.KINDS:
            raise UserError(f"unknown registry kind '{kind}'. Available: {', '.join(hookspecs.KINDS)}")
        if kind not in self._registries:
            self._registries[kind] = self._build(kind)
        return self._registries[kind]

    def _build(self, kind: str) -> Registry:
        hook_name = hookspecs.KIND_BY_NAME[kind].hook
        registry = Registry(kind, load_failures=[m for _, m in self.failures])
        plugin_names = dict.fromkeys(impl.plugin_name for impl in getattr(self.pm.hook, hook_name).get_hookimpls())
        for plugin_name in plugin_names:  # once per plugin, even if it has several impls (decorated functions)
            plugin = self.pm.get_plugin(plugin_name)
            info = self.plugins.get(plugin_name) or PluginInfo(plugin_name, plugin_name, "?", "object")
            others = [p for p in self.pm.get_plugins() if p is not plugin]
            caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
            caller(register=self._register_callback(registry, info))
        return registry

    @staticmethod
    def _register_callback(registry: Registry, info: PluginInfo) -> hookspecs.Register:
        kind, label = registry.kind, registry.label

        def register(
            name: str, obj: Any, *, config_cls: type | None = None, description: str | None = None
        ) -> None:
            if not isinstance(name, str) or not name:
                raise UserError(f"plugin {info.label()} registered a {label} with an invalid name {name!r}")
            if config_cls is not None and not attrs.has(config_cls):
                raise UserError(
                    f"plugin {info.label()} registered {label} '{name}' with config_cls {config_cls!r}, "
                    "which is not an attrs class; decorate it with @attrs.define(kw_only=True)"
                )
            registry.add(Registration(kind, name, obj, info, config_cls, description))

        return register

    def registered_by(self, plugin_name: str) -> dict[str, list[str]]:
        """Names per kind that one plugin registered."""
        found: dict[str, list[str]] = {}
        for kind in hookspecs.KINDS:
            names = [r.name for r in self.registry(kind).entries() if r.plugin.name == plugin_name]
            if names:
                found[kind] = names
        return found

    def hooks_of(self, plugin_name: str) -> list[str]:
        plugin = self.pm.get_plugin(plugin_name)
        return sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager()
    return _manager


def set_plugin_manager(manager: PluginManager | None) -> PluginManager | None:
    """Replace the process-wide plugin manager (tests); returns the previous one."""
    global _manager
    previous, _manager = _manager, manager
    return previous


def registry(kind: str) -> Registry:
    """Read-only mapping name -> registered object for one kind (``registry("environments")["gsm8k"]``)."""
    return get_plugin_manager().registry(kind)
