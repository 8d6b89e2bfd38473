"""The plugin host: the one typed facade over pluggy.

Policy, in short:
- A plugin given in code (`Runtime(plugins=[...])`, `--plugin`) that fails to load or
  register is an error: the caller asked for it by name.
- A plugin found through an entry point that fails to import, whose hook raises, or
  that implements an unknown hook is skipped with a logged error naming it (job types
  it registered before failing are forgotten); `brains-jobs plugins` lists it with the
  reason. The other plugins
  keep working, and a worker never takes jobs of the types the broken plugin would
  have provided (it does not know them).
- Two plugins registering one job type name is always an error naming both.
- `BRAINS_JOBS_PLUGINS_ALLOW` (comma-separated entry point names) loads only those
  installed plugins; `BRAINS_JOBS_PLUGINS_DENY` never loads those. (`Settings` reads
  them; the host takes the lists.)
- Plugins are named by their module, or their entry point; two distinct plugin objects
  of one class both register (the second as `Name#2`): only what they register can
  clash.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import types
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from ..exceptions import ConfigurationError, PluginError
from ..maintenance import Service
from ..store.records import StoreOptions
from . import builtin, hookspecs

if TYPE_CHECKING:
    import click

    from ..artifacts import ArtifactStore
    from ..events import EventSubscriber
    from ..models import EventKind
    from ..registry import Registry
    from ..store import Store

logger = logging.getLogger("brains_jobs.plugins")

ENTRY_POINT_GROUP = "brains_jobs"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """A loaded plugin: its name, where it came from, and what it registered."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    job_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str | None
    error: str


@dataclass(frozen=True, slots=True)
class SubscriberSpec:
    """An event subscriber a plugin registered."""

    plugin: str
    name: str
    callback: EventSubscriber
    types: Collection[str] | None = None
    kinds: Collection[EventKind] | None = None


@dataclass
class _Origin:
    distribution: str | None = None
    version: str | None = None
    job_types: list[str] = field(default_factory=list)
    from_entry_point: bool = False


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    name = getattr(plugin, "__name__", None)
    return name if isinstance(name, str) else type(plugin).__name__


def load_plugin_reference(reference: str) -> object:
    """Import a plugin given as `package.module` or `package.module:attribute`."""
    module_name, _, attr = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module
    except Exception as exc:
        raise PluginError(f"plugin {reference!r} failed to load: {exc!r}") from exc


class PluginHost:
    """Loads plugins (built-in, given in code, and from entry points) and calls their hooks."""

    def __init__(
        self,
        plugins: Iterable[object | str] = (),
        *,
        load_entrypoints: bool = True,
        allow: Collection[str] | None = None,
        deny: Collection[str] = (),
    ) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._origins: dict[str, _Origin] = {}
        self.failures: list[PluginFailure] = []
        self._register(builtin, "brains_jobs.builtin", _Origin("brains-jobs", _version()))
        for plugin in plugins:
            obj = load_plugin_reference(plugin) if isinstance(plugin, str) else plugin
            self._register(obj, self._unique_name(_plugin_name(obj), obj), _Origin())
        if load_entrypoints:
            self._load_entrypoints(allow, deny)
        while True:
            try:
                self._pm.check_pending()
                break
            except pluggy.PluginValidationError as exc:
                name = self._pm.get_name(exc.plugin) or repr(exc.plugin)
                self._fail(name, f"implements an unknown hook: {exc}", exc)

    def _unique_name(self, name: str, plugin: object) -> str:
        """`name`, or `name#2`, `name#3`... when another plugin object already has it."""
        candidate, n = name, 1
        while self._pm.has_plugin(candidate) and self._pm.get_plugin(candidate) is not plugin:
            n += 1
            candidate = f"{name}#{n}"
        return candidate

    def _register(self, plugin: object, name: str, origin: _Origin) -> None:
        if self._pm.has_plugin(name) or self._pm.is_registered(plugin):
            return
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc
        self._origins[name] = origin

    def _load_entrypoints(self, allow: Collection[str] | None, deny: Collection[str]) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (allow is not None and ep.name not in allow) or ep.name in deny:
                continue
            dist = ep.dist.name if ep.dist else None
            loaded = _load_entrypoint(ep)
            if isinstance(loaded, PluginFailure):
                self.failures.append(loaded)
                continue
            version = ep.dist.version if ep.dist else None
            self._register(loaded, ep.name, _Origin(dist, version, from_entry_point=True))

    def _impls(self, hook_name: str) -> list[tuple[str, Callable[..., Any]]]:
        hook = getattr(self._pm.hook, hook_name)
        return [(impl.plugin_name, impl.function) for impl in hook.get_hookimpls()]

    def _fail(self, plugin: str, reason: str, exc: BaseException) -> None:
        """A plugin misbehaved: skip it if it came from an entry point, else raise."""
        origin = self._origins.get(plugin)
        if origin is None or not origin.from_entry_point:
            raise PluginError(f"plugin {plugin!r} {reason}") from exc
        logger.error("plugin %r (%s) is skipped: it %s", plugin, origin.distribution, reason)
        self.failures.append(PluginFailure(plugin, origin.distribution, f"it {reason}"))
        self._pm.unregister(name=plugin)
        del self._origins[plugin]

    def _call(self, hook_name: str, plugin: str, fn: Callable[..., Any], **kwargs: Any) -> None:
        try:
            fn(**kwargs)
        except PluginError:
            raise
        except Exception as exc:
            self._fail(plugin, f"failed in {hook_name}: {exc!r}", exc)

    # -- hooks, typed ---------------------------------------------------------------

    def register_jobs(self, registry: Registry) -> None:
        """Fill `registry` with every plugin's job definitions."""
        for plugin, fn in self._impls("brains_jobs_register_jobs"):
            origin = self._origins.setdefault(plugin, _Origin())

            def register(definition: Any, *, _plugin: str = plugin, _o: _Origin = origin) -> None:
                registry.add(definition, owner=_plugin)
                _o.job_types.append(definition.name)

            self._call("brains_jobs_register_jobs", plugin, fn, register=register)
            if plugin not in self._origins:  # skipped: forget what it registered so far
                for name in origin.job_types:
                    registry.remove(name)

    def subscribers(self) -> list[SubscriberSpec]:
        """Every event subscriber the plugins registered."""
        found: list[SubscriberSpec] = []
        for plugin, fn in self._impls("brains_jobs_register_subscribers"):

            def register(
                name: str,
                callback: EventSubscriber,
                *,
                types: Collection[str] | None = None,
                kinds: Collection[EventKind] | None = None,
                _plugin: str = plugin,
            ) -> None:
                found.append(SubscriberSpec(_plugin, name, callback, types, kinds))

            self._call("brains_jobs_register_subscribers", plugin, fn, register=register)
        return found

    def add_commands(self, group: click.Group) -> None:
        """Add every plugin's CLI commands to `group`."""
        for plugin, fn in self._impls("brains_jobs_register_commands"):
            self._call("brains_jobs_register_commands", plugin, fn, register=group.add_command)

    def _factories(self, hook_name: str) -> dict[str, Callable[[Any], Any]]:
        factories: dict[str, Callable[[Any], Any]] = {}
        owners: dict[str, str] = {}
        for plugin, fn in self._impls(hook_name):

            def register(
                scheme: str, factory: Callable[[Any], Any], *, _plugin: str = plugin
            ) -> None:
                if scheme in factories:
                    raise PluginError(
                        f"scheme {scheme!r} is registered twice: by plugin {owners[scheme]!r}"
                        f" and by plugin {_plugin!r}"
                    )
                factories[scheme] = factory
                owners[scheme] = _plugin

            self._call(hook_name, plugin, fn, register=register)
        return factories

    def make_store(self, options: StoreOptions | str) -> Store:
        """The job store for `options.url` (or a URL), by its scheme (before `:` and any
        `+driver`).
        """
        if isinstance(options, str):
            options = StoreOptions(options)
        url = options.url
        factories = self._factories("brains_jobs_register_stores")
        scheme = url.partition(":")[0].partition("+")[0]
        if not url.partition(":")[1] or scheme not in factories:
            raise ConfigurationError(
                f"no store for database URL {url!r}: use sqlite+aiosqlite:///path/to/jobs.db"
                " or postgresql+asyncpg://user@host/database (known schemes:"
                f" {', '.join(sorted(factories))})"
            )
        store: Store = factories[scheme](options)
        return store

    def services(self) -> list[Service]:
        """Every maintenance service the plugins (the built-in one included) provide."""
        found: list[Service] = []
        names: dict[str, str] = {}
        for plugin, fn in self._impls("brains_jobs_register_services"):

            def register(service: Service, *, _plugin: str = plugin) -> None:
                if not isinstance(service, Service):
                    raise PluginError(
                        f"plugin {_plugin!r} registered {service!r}, which is not a maintenance"
                        " service (name, leader_only, interval(settings), run_once(ctx))"
                    )
                if service.name in names:
                    raise PluginError(
                        f"maintenance service {service.name!r} is registered twice: by plugin"
                        f" {names[service.name]!r} and by plugin {_plugin!r}"
                    )
                names[service.name] = _plugin
                found.append(service)

            self._call("brains_jobs_register_services", plugin, fn, register=register)
        return found

    def make_artifact_store(self, url: str) -> ArtifactStore:
        """The artifact store for `url`; a plain path is a directory."""
        factories = self._factories("brains_jobs_register_artifact_stores")
        scheme, sep, _ = url.partition("://")
        if not sep:
            scheme = "file"
        if scheme not in factories:
            raise ConfigurationError(
                f"no artifact store for {url!r}; known schemes: {', '.join(sorted(factories))}"
            )
        artifacts: ArtifactStore = factories[scheme](url)
        return artifacts

    def plugins(self) -> list[PluginInfo]:
        """Every loaded plugin with its distribution, version and job types."""
        result = []
        for name, plugin in self._pm.list_name_plugin():
            origin = self._origins.get(name, _Origin())
            module = (
                plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
            )
            result.append(
                PluginInfo(
                    name=name,
                    module=module,
                    distribution=origin.distribution,
                    version=origin.version,
                    job_types=tuple(sorted(origin.job_types)),
                )
            )
        return sorted(result, key=lambda p: p.name)


_loaded: dict[tuple[str, str], object] = {}


def _load_entrypoint(ep: importlib.metadata.EntryPoint) -> object:
    """Import an entry point's plugin once per process (a failure is logged once too)."""
    key = (ep.name, ep.value)
    if key not in _loaded:
        dist = ep.dist.name if ep.dist else None
        try:
            _loaded[key] = ep.load()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.error("plugin %r (%s) failed to load and is skipped: %s", ep.name, dist, error)
            _loaded[key] = PluginFailure(ep.name, dist, error)
    return _loaded[key]


def _version() -> str | None:
    try:
        return importlib.metadata.version("brains-jobs")
    except importlib.metadata.PackageNotFoundError:
        return None
