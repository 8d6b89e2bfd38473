"""Versioned, forward-only schema migrations: one SQL file per step and dialect."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    """One step: `name` is the file's stem (`0001_initial`), applied in name order."""

    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """Every migration of `dialect` (`sqlite` or `postgresql`), in order."""
    folder = resources.files(__name__).joinpath(dialect)
    steps = [
        Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(steps, key=lambda m: m.name)
