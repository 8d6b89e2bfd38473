"""The hooks that register the demo's job types and its `demo` command (the entry point
module).
"""

from __future__ import annotations

import brains_jobs as bj

from .command import demo
from .jobs import ALL_JOBS

__all__ = ["brains_jobs_register_commands", "brains_jobs_register_jobs"]


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    """The demo's job types: two stand-alone ones and the three report steps."""
    for definition in ALL_JOBS:
        register(definition)


@bj.hookimpl
def brains_jobs_register_commands(register: bj.RegisterCommand) -> None:
    """The `brains-jobs demo` command."""
    register(demo)
