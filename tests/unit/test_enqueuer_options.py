"""`Enqueuer.options`: an enqueue with no options gets the job its definition describes,
the same job the full option check builds from every option left at its default.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.enqueueing import Enqueuer
from brains_jobs.registry import Registry


class In(BaseModel):
    n: int


class Out(BaseModel):
    pass


@bj.job("plain")
async def plain(ctx: bj.JobContext, inp: In) -> Out:
    return Out()


@bj.job("tuned", queue="slow", priority=7, max_attempts=9, version=3)
async def tuned(ctx: bj.JobContext, inp: In) -> Out:
    return Out()


@pytest.mark.parametrize("definition", [plain, tuned], ids=["defaults", "own settings"])
def test_no_options_make_the_job_the_defaults_make(definition: bj.JobDefinition) -> None:
    registry = Registry()
    registry.add(definition)
    enqueuer = Enqueuer(registry, max_payload=2**20)

    shortcut = enqueuer.options(definition, {})
    full = enqueuer._options(definition)

    assert shortcut == full
    assert (shortcut.queue, shortcut.priority, shortcut.max_attempts, shortcut.version) == (
        definition.queue,
        definition.priority,
        definition.max_attempts,
        definition.version,
    )
    # A fresh job each time: what one enqueue sets on it is not another's.
    assert enqueuer.options(definition, {}) is not shortcut
    assert enqueuer.options(definition, {}).metadata is not shortcut.metadata
