"""Versions of a job type's input: a job remembers the version it was enqueued under,
and a worker that knows a newer one upgrades its input before running it.

A definition declares `version=3, upgrade={1: v1_to_v2, 2: v2_to_v3}`: each function
takes the input of its version as a dict and returns the input of the next. Jobs queued
before a deploy that changed the input model run with today's model; a job that cannot
be upgraded fails for good, naming its version. A job of a newer version than this
worker knows (a deploy under way) is left for a worker that knows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import ConfigurationError, PermanentError

Upgrades = Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]

#: Seconds a job of a version this worker does not know waits before it is offered again.
NEWER_VERSION_DELAY = 5.0


class UpgradeFailed(PermanentError):
    """A job's input could not be upgraded to the version this worker runs."""


def check_versions(name: str, version: Any, upgrade: Any) -> None:
    """`ConfigurationError` unless `version` is a whole number from 1 and `upgrade`
    maps versions below it to functions.
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigurationError(f"job {name!r}: version must be a whole number from 1")
    if not isinstance(upgrade, Mapping):
        raise ConfigurationError(f"job {name!r}: upgrade must map versions to functions")
    for source, fn in upgrade.items():
        if not isinstance(source, int) or isinstance(source, bool) or not 1 <= source < version:
            raise ConfigurationError(
                f"job {name!r}: upgrade keys are the versions below {version} that a"
                f" function upgrades from, got {source!r}"
            )
        if not callable(fn):
            raise ConfigurationError(f"job {name!r}: upgrade[{source}] must be a function")


def upgrade_input(name: str, data: Any, source: int, target: int, upgrade: Upgrades) -> Any:
    """The input `data` of version `source` upgraded, step by step, to `target`.

    `UpgradeFailed` names the version a step is missing for or failed at.
    """
    for version in range(source, target):
        step = upgrade.get(version)
        if step is None:
            raise UpgradeFailed(
                f"job type {name!r} has no upgrade from version {version} (the job was"
                f" enqueued under version {source}; this worker runs version {target})"
            )
        if not isinstance(data, dict):
            raise UpgradeFailed(
                f"the input of version {version} is not an object and cannot be upgraded"
            )
        try:
            data = step(dict(data))
        except Exception as exc:
            raise UpgradeFailed(
                f"upgrading the input of job type {name!r} from version {version} to"
                f" {version + 1} failed: {type(exc).__name__}: {exc}"
            ) from exc
    return data
