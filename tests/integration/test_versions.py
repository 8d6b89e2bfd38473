"""Job type versions on each store: a job queued under an older input model is upgraded
when a newer worker claims it; one that cannot be upgraded fails for good naming its
version; one of a newer version waits for a worker that knows it.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from tests.integration.conftest import running_worker, wait_for_status

pytestmark = pytest.mark.anyio

S = bj.JobStatus


class GreetV1(BaseModel):
    name: str


class GreetV2(BaseModel):
    first: str
    last: str = ""
    polite: bool = True


class Greeting(BaseModel):
    text: str


async def greet_v1(ctx: bj.JobContext, inp: GreetV1) -> Greeting:
    return Greeting(text=f"hi {inp.name}")


async def greet_v2(ctx: bj.JobContext, inp: GreetV2) -> Greeting:
    return Greeting(text=f"{'dear' if inp.polite else 'hi'} {inp.first} {inp.last}".strip())


def split_name(data: dict[str, Any]) -> dict[str, Any]:
    first, _, last = data.pop("name").partition(" ")
    return {**data, "first": first, "last": last}


V1 = bj.JobDefinition("greet", greet_v1, GreetV1, Greeting)
V2 = bj.JobDefinition("greet", greet_v2, GreetV2, Greeting, version=2, upgrade={1: split_name})
V2_NO_PATH = bj.JobDefinition("greet", greet_v2, GreetV2, Greeting, version=2)


def runtime(url: str, definition: bj.JobDefinition[Any, Any]) -> bj.Runtime:
    return bj.Runtime(url, jobs=[definition], load_entrypoints=False, lease=5.0)


async def test_a_queued_job_of_an_older_version_is_upgraded(database_url: str) -> None:
    async with runtime(database_url, V1) as old:
        handle = await old.enqueue(V1, GreetV1(name="Ada Lovelace"))
        assert (await old.get(handle.id)).version == 1
    async with runtime(database_url, V2) as new:
        async with running_worker(new):
            await wait_for_status(new, handle.id, S.SUCCEEDED)
        job = await new.get(handle.id)
        assert job.output == {"text": "dear Ada Lovelace"}
        assert (job.version, job.input) == (2, {"first": "Ada", "last": "Lovelace", "polite": True})
        events = await new.store.events_after(0, job_id=handle.id)
        assert any(e.message == "input upgraded from version 1 to 2" for e in events)
        fresh = await new.enqueue(V2, {"first": "Alan"})
        assert (await new.get(fresh.id)).version == 2


async def test_a_job_that_cannot_be_upgraded_fails_naming_its_version(database_url: str) -> None:
    async with runtime(database_url, V1) as old:
        handle = await old.enqueue(V1, {"name": "Grace"})
    async with runtime(database_url, V2_NO_PATH) as new:
        async with running_worker(new):
            await wait_for_status(new, handle.id, S.FAILED)
        error = (await new.get(handle.id)).last_error
        assert error is not None and error.type == "UpgradeFailed"
        assert "no upgrade from version 1" in error.message
        assert (await new.get(handle.id)).attempts == 1


async def test_a_job_of_a_newer_version_waits_for_a_worker_that_knows_it(
    database_url: str,
) -> None:
    async with runtime(database_url, V2) as new:
        handle = await new.enqueue(V2, {"first": "Edsger"})
    async with runtime(database_url, V1) as old:
        async with running_worker(old):
            with anyio.fail_after(10):
                while "version 2" not in ((await old.get(handle.id)).progress_message or "") and (
                    not any(
                        "this worker runs version 1" in (e.message or "")
                        for e in await old.store.events_after(0, job_id=handle.id)
                    )
                ):
                    await anyio.sleep(0.05)
        job = await old.get(handle.id)
        assert (job.status, job.version, job.errors) == (S.QUEUED, 2, [])
        assert job.max_attempts - job.attempts == 3  # the attempt was given back
    async with runtime(database_url, V2) as new:
        async with running_worker(new):
            await wait_for_status(new, handle.id, S.SUCCEEDED)


def test_versions_are_checked_when_defined() -> None:
    with pytest.raises(bj.ConfigurationError, match="version must be"):
        bj.JobDefinition("g", greet_v2, GreetV2, Greeting, version=0)
    with pytest.raises(bj.ConfigurationError, match="upgrade keys"):
        bj.JobDefinition("g", greet_v2, GreetV2, Greeting, version=2, upgrade={2: split_name})
    with pytest.raises(bj.ConfigurationError, match="must be a function"):
        bj.JobDefinition("g", greet_v2, GreetV2, Greeting, version=2, upgrade={1: "x"})  # type: ignore[dict-item]
