"""The registry: job type names to definitions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .definitions import JobDefinition
from .exceptions import PluginError, UnknownJobType

if TYPE_CHECKING:
    from collections.abc import Iterator


class Registry:
    """Every job type a runtime knows, each with the plugin that registered it."""

    def __init__(self) -> None:
        self._definitions: dict[str, JobDefinition[Any, Any]] = {}
        self._owners: dict[str, str] = {}

    def add(self, definition: JobDefinition[Any, Any], *, owner: str = "<code>") -> None:
        """Register `definition`; a second definition of the same name is a `PluginError`."""
        if not isinstance(definition, JobDefinition):
            raise PluginError(
                f"plugin {owner!r} registered {definition!r}, which is not a JobDefinition"
                " (decorate the handler with @brains_jobs.job)"
            )
        existing = self._definitions.get(definition.name)
        if existing is not None and existing is not definition:
            raise PluginError(
                f"job type {definition.name!r} is registered twice: by plugin "
                f"{self._owners[definition.name]!r} and by plugin {owner!r}"
            )
        self._definitions[definition.name] = definition
        self._owners[definition.name] = owner

    def remove(self, name: str) -> None:
        """Forget job type `name` (a plugin that failed half-way through registering)."""
        self._definitions.pop(name, None)
        self._owners.pop(name, None)

    def get(self, name: str) -> JobDefinition[Any, Any]:
        """The definition named `name`, or `UnknownJobType` listing the known names."""
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownJobType(name, self._definitions) from None

    def owner(self, name: str) -> str:
        """The plugin that registered job type `name`."""
        self.get(name)
        return self._owners[name]

    def names(self) -> list[str]:
        """The registered job type names, sorted."""
        return sorted(self._definitions)

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    def __iter__(self) -> Iterator[JobDefinition[Any, Any]]:
        return iter([self._definitions[n] for n in self.names()])

    def __len__(self) -> int:
        return len(self._definitions)
