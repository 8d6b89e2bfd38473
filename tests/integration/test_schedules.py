"""Recurring jobs on each store, with the scheduler's clock driven by the test: cron and
interval ticks, daylight-saving gaps and repeats, missed ticks (skip, latest, all),
pause, resume and removal, the record of every tick, the schedules of job definitions,
and two schedulers deciding the same ticks at once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.maintenance import MaintenanceContext
from brains_jobs.maintenance.scheduler import CHUNK, Scheduler, plan
from brains_jobs.store.schedules import TickBatch, TickDecision
from tests.integration.conftest import running_worker
from tests.support import jobs

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Digest(BaseModel):
    audience: str = "everyone"


class Sent(BaseModel):
    audience: str


@bj.job("digest", schedule=bj.Every(timedelta(minutes=10)))
async def digest(ctx: bj.JobContext, inp: Digest) -> Sent:
    """A job type with a schedule of its own."""
    return Sent(audience=inp.audience)


def context(rt: bj.Runtime) -> MaintenanceContext:
    return MaintenanceContext(rt.store, rt.registry, rt.artifacts, rt.settings, "test")


async def drive(rt: bj.Runtime, start: datetime, end: datetime, step: timedelta) -> Scheduler:
    """Run scheduler passes from `start` to `end`, one every `step`."""
    scheduler = Scheduler()
    now = start
    while now <= end:
        await scheduler.run_once(context(rt), now=now)
        now += step
    return scheduler


async def ticks(rt: bj.Runtime, name: str) -> list[bj.Tick]:
    """The ticks of `name`, oldest first."""
    return list(reversed(await rt.schedule_ticks(name, limit=10_000)))


async def keys(rt: bj.Runtime) -> Counter[str]:
    page = await rt.list(limit=1000)
    return Counter(j.unique_key for j in page.jobs if j.unique_key)


def local(tick: bj.Tick, zone: str) -> str:
    return tick.tick.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M %Z")


# -- ticks -----------------------------------------------------------------------------


async def test_cron_ticks_in_a_time_zone_each_enqueue_one_job(rt: bj.Runtime) -> None:
    info = await rt.schedule(
        "weekly", jobs.add, {"a": 1}, cron="0 9 * * MON", timezone="Europe/Paris", start=T0
    )
    assert info.next_run_at == datetime(2024, 3, 4, 8, 0, tzinfo=UTC)  # 09:00 CET
    await drive(rt, T0, T0 + timedelta(days=30), timedelta(hours=6))
    found = await ticks(rt, "weekly")
    # 09:00 in Paris: 08:00 UTC in winter, 07:00 UTC once the clocks went forward.
    assert [t.tick.strftime("%m-%d %H:%M") for t in found] == [
        "03-04 08:00",
        "03-11 08:00",
        "03-18 08:00",
        "03-25 08:00",
    ]
    # Each was found hours late (grace is 60 s); missed="latest" runs the newest anyway.
    assert {t.outcome for t in found} == {"enqueued"}
    assert all("s late (missed=latest)" in (t.detail or "") for t in found)
    info = (await rt.schedules())[0]
    assert (info.name, info.job_type, info.paused) == ("weekly", "add", False)
    assert info.next_run_at == datetime(2024, 4, 1, 7, 0, tzinfo=UTC)  # 09:00 CEST


async def test_every_ticks_are_counted_from_the_epoch_or_an_anchor(rt: bj.Runtime) -> None:
    start = T0 + timedelta(seconds=17)
    first = await rt.schedule("five", jobs.add, {"a": 1}, every=timedelta(minutes=5), start=start)
    assert first.next_run_at == T0 + timedelta(minutes=5)
    anchor = T0 + timedelta(seconds=7)
    second = await rt.schedule("odd", jobs.add, {"a": 2}, every=300, anchor=anchor, start=start)
    assert second.next_run_at == anchor + timedelta(minutes=5)
    await drive(rt, start, T0 + timedelta(minutes=16), timedelta(seconds=30))
    assert [t.tick - T0 for t in await ticks(rt, "five")] == [
        timedelta(minutes=m) for m in (5, 10, 15)
    ]
    odd = await ticks(rt, "odd")
    assert [t.tick - anchor for t in odd] == [timedelta(minutes=m) for m in (5, 10, 15)]
    assert {t.outcome for t in odd} == {"enqueued"} and all(t.detail is None for t in odd)
    found = await keys(rt)
    assert found["schedule:five:2024-03-01T12:05:00Z"] == 1
    assert sum(found.values()) == 6 and set(found.values()) == {1}
    job = await rt.get(odd[0].job_id or 0)
    assert job.input == {"a": 2, "b": 0} and job.unique_until == "pruned"


async def daily(rt: bj.Runtime, expr: str, zone: str, day: datetime) -> list[str]:
    """The ticks of `expr` from the day before `day` to the day after, in local time."""
    name = f"{expr.replace(' ', '_').replace('*', 'x')}-{zone.replace('/', '_')}-{day:%m%d}"
    start = day - timedelta(days=1)
    # Passes every three hours, and four hours of grace: every tick runs.
    await rt.schedule(
        name, jobs.noop, {"a": 0}, cron=expr, timezone=zone, grace=4 * 3600, start=start
    )
    await drive(rt, start, day + timedelta(days=2, hours=3), timedelta(hours=3))
    found = await ticks(rt, name)
    assert {t.outcome for t in found} == {"enqueued"}
    assert sum(1 for k in (await keys(rt)) if k.startswith(f"schedule:{name}:")) == len(found)
    return [local(t, zone) for t in found]


async def test_a_time_in_the_spring_gap_runs_once_right_after_it(rt: bj.Runtime) -> None:
    # Paris, 31 March 2024: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    paris = datetime(2024, 3, 31, tzinfo=UTC)
    assert await daily(rt, "30 2 * * *", "Europe/Paris", paris) == [
        "03-30 02:30 CET",
        "03-31 03:00 CEST",
        "04-01 02:30 CEST",
        "04-02 02:30 CEST",
    ]
    # New York, 10 March 2024: 02:00 EST becomes 03:00 EDT.
    new_york = datetime(2024, 3, 10, 12, tzinfo=UTC)
    assert await daily(rt, "30 2 * * *", "America/New_York", new_york) == [
        "03-10 03:00 EDT",
        "03-11 02:30 EDT",
        "03-12 02:30 EDT",
    ]


async def test_a_time_in_the_autumn_repeat_runs_once(rt: bj.Runtime) -> None:
    # Paris, 27 October 2024: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    paris = datetime(2024, 10, 27, tzinfo=UTC)
    assert await daily(rt, "30 2 * * *", "Europe/Paris", paris) == [
        "10-26 02:30 CEST",
        "10-27 02:30 CEST",
        "10-28 02:30 CET",
        "10-29 02:30 CET",
    ]
    # New York, 3 November 2024: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    new_york = datetime(2024, 11, 3, 12, tzinfo=UTC)
    assert await daily(rt, "30 1 * * *", "America/New_York", new_york) == [
        "11-03 01:30 EDT",
        "11-04 01:30 EST",
        "11-05 01:30 EST",
    ]


async def test_hourly_expressions_follow_elapsed_time_across_the_changes(
    rt: bj.Runtime,
) -> None:
    zone = ZoneInfo("America/New_York")
    spring = await daily(rt, "0 * * * *", "America/New_York", datetime(2024, 3, 10, tzinfo=UTC))
    on_the_day = [t for t in spring if t.startswith("03-10")]
    assert len(on_the_day) == 23 and not any(" 02:" in t for t in on_the_day)
    autumn = await daily(rt, "0 * * * *", "America/New_York", datetime(2024, 11, 3, tzinfo=UTC))
    assert [t for t in autumn if t.startswith("11-03 01:")] == [
        "11-03 01:00 EDT",
        "11-03 01:00 EST",  # the repeated hour ticks twice
    ]
    assert len([t for t in autumn if t.startswith("11-03")]) == 25
    assert datetime(2024, 11, 3, 1, tzinfo=zone).tzname() == "EDT"


# -- missed ticks ---------------------------------------------------------------------


async def every_minute(rt: bj.Runtime, name: str, missed: str, late: timedelta) -> list[bj.Tick]:
    """A schedule ticking every minute from T0 (30 s of grace), first looked at `late`
    after T0 + 10 min.
    """
    await rt.schedule(name, jobs.add, {"a": 1}, every=MINUTE, missed=missed, grace=30, start=T0)
    await Scheduler().run_once(context(rt), now=T0 + 10 * MINUTE + late)
    return await ticks(rt, name)


async def test_missed_skip_runs_only_the_ticks_on_time(rt: bj.Runtime) -> None:
    found = await every_minute(rt, "skip", "skip", timedelta(seconds=20))
    assert len(found) == 11
    assert [t.outcome for t in found] == ["missed"] * 10 + ["enqueued"]
    assert "passed while no scheduler ran" in (found[0].detail or "")
    assert "missed=skip" in (found[0].detail or "")
    assert sum((await keys(rt)).values()) == 1


async def test_missed_latest_runs_the_newest_unless_one_is_on_time(rt: bj.Runtime) -> None:
    found = await every_minute(rt, "latest", "latest", timedelta(seconds=45))
    assert [t.outcome for t in found] == ["missed"] * 10 + ["enqueued"]
    assert found[-1].tick == T0 + 10 * MINUTE and "45s late" in (found[-1].detail or "")
    on_time = await every_minute(rt, "latest-2", "latest", timedelta(seconds=20))
    assert [t.outcome for t in on_time] == ["missed"] * 10 + ["enqueued"]
    assert on_time[-1].detail is None
    assert sum((await keys(rt)).values()) == 2


async def test_missed_all_runs_the_newest_hundred(rt: bj.Runtime) -> None:
    await rt.schedule("all", jobs.add, {"a": 1}, every=MINUTE, missed="all", grace=30, start=T0)
    now = T0 + 150 * MINUTE + timedelta(seconds=45)
    assert await Scheduler().run_once(context(rt), now=now) == 151
    found = await ticks(rt, "all")
    assert [t.outcome for t in found] == ["missed"] * 51 + ["enqueued"] * 100
    assert sum((await keys(rt)).values()) == 100
    assert [t.job_id for t in found[51:]] == sorted(t.job_id or 0 for t in found[51:])


async def test_a_long_backlog_is_recorded_in_chunks(rt: bj.Runtime) -> None:
    await rt.schedule("busy", jobs.add, {"a": 1}, every=1, missed="latest", start=T0)
    late = 2 * CHUNK + 500
    await Scheduler().run_once(context(rt), now=T0 + timedelta(seconds=late, minutes=2))
    found = await ticks(rt, "busy")
    assert len(found) == late + 121
    assert Counter(t.outcome for t in found) == {"missed": late + 60, "enqueued": 61}
    info = (await rt.schedules())[0]
    assert info.next_run_at == T0 + timedelta(seconds=late + 121)


def test_plan_decides_in_python() -> None:
    spec = bj.Every(MINUTE, missed="all")
    decided = plan(spec, T0, T0 + 5 * MINUTE, paused=True)
    assert [o for _, o, _ in decided.ticks] == ["skipped"] * 6
    assert decided.next_run_at == T0 + 6 * MINUTE and decided.complete
    partial = plan(spec, T0, T0 + 500 * MINUTE, chunk=100, bound=10)
    assert len(partial.ticks) == 100 and not partial.complete
    assert {o for _, o, _ in partial.ticks} == {"missed"}
    assert partial.next_run_at == T0 + 100 * MINUTE


# -- pause, resume, remove ---------------------------------------------------------------


async def test_pause_resume_and_unschedule(rt: bj.Runtime) -> None:
    await rt.schedule("p", jobs.add, {"a": 1}, every=MINUTE, start=T0)
    scheduler = Scheduler()
    await scheduler.run_once(context(rt), now=T0)
    assert await rt.pause_schedule("p")
    assert (await rt.schedules())[0].paused
    await scheduler.run_once(context(rt), now=T0 + MINUTE)
    await scheduler.run_once(context(rt), now=T0 + 2 * MINUTE)
    assert await rt.resume_schedule("p")
    await scheduler.run_once(context(rt), now=T0 + 3 * MINUTE)
    found = await ticks(rt, "p")
    assert [(t.outcome, t.detail) for t in found] == [
        ("enqueued", None),
        ("skipped", "the schedule was paused"),
        ("skipped", "the schedule was paused"),
        ("enqueued", None),
    ]
    info = (await rt.schedules())[0]
    assert info.last_run_at == T0 + 3 * MINUTE and info.last_job_id == found[-1].job_id
    assert await rt.unschedule("p")
    assert await rt.schedules() == [] and await rt.schedule_ticks("p") == []
    assert sum((await keys(rt)).values()) == 2  # the jobs stay
    assert not await rt.unschedule("p")
    assert not await rt.pause_schedule("p") and not await rt.resume_schedule("p")


async def test_replacing_a_schedule_keeps_its_next_tick_unless_its_timing_changed(
    rt: bj.Runtime,
) -> None:
    await rt.schedule("r", jobs.add, {"a": 1}, every=MINUTE, start=T0)
    again = await rt.schedule("r", jobs.add, {"a": 2}, every=MINUTE, queue="other")
    assert again.next_run_at == T0 and again.input == {"a": 2, "b": 0}
    assert again.queue == "other"
    moved = await rt.schedule("r", jobs.add, {"a": 2}, every=2 * MINUTE, start=T0 + MINUTE)
    assert moved.next_run_at == T0 + 2 * MINUTE


async def test_bad_schedules_are_refused_before_anything_is_written(rt: bj.Runtime) -> None:
    with pytest.raises(bj.ConfigurationError, match="Bad minute"):
        await rt.schedule("x", jobs.add, {"a": 1}, cron="61 * * * *")
    with pytest.raises(bj.ConfigurationError, match="unknown time zone"):
        await rt.schedule("x", jobs.add, {"a": 1}, cron="* * * * *", timezone="Mars/Base")
    with pytest.raises(bj.ConfigurationError, match="not cron and every"):
        await rt.schedule("x", jobs.add, {"a": 1}, cron="* * * * *", every=60)
    with pytest.raises(bj.ConfigurationError, match="missed"):
        await rt.schedule("x", jobs.add, {"a": 1}, every=60, missed="sometimes")
    with pytest.raises(bj.ConfigurationError, match="whole number of seconds"):
        await rt.schedule("x", jobs.add, {"a": 1}, every=0.5)
    with pytest.raises(bj.ConfigurationError, match="job definitions"):
        await rt.schedule("job:add", jobs.add, {"a": 1}, every=60)
    with pytest.raises(bj.InvalidJobOption, match="delay"):
        await rt.schedule("x", jobs.add, {"a": 1}, every=60, delay=5)
    with pytest.raises(bj.InvalidJobInput):
        await rt.schedule("x", jobs.add, {"a": "one"}, every=60)
    assert await rt.schedules() == []


# -- definitions --------------------------------------------------------------------------


async def test_a_definition_schedule_is_written_when_the_scheduler_starts(
    database_url: str, tmp_path: Path
) -> None:
    async with runtime(database_url, tmp_path, [digest, *jobs.ALL]) as rt:
        await drive(rt, T0 + timedelta(seconds=1), T0 + 21 * MINUTE, MINUTE)
        (info,) = await rt.schedules()
        assert (info.name, info.job_type, info.source) == ("job:digest", "digest", "definition")
        assert info.input == {"audience": "everyone"}
        found = await ticks(rt, "job:digest")
        assert [t.tick for t in found] == [T0 + 10 * MINUTE, T0 + 20 * MINUTE]
        job = await rt.get(found[0].job_id or 0)
        assert job.type == "digest" and job.input == {"audience": "everyone"}
        assert await rt.pause_schedule("job:digest")
    # A later start keeps the pause and the next tick; a definition without its schedule
    # takes it away.
    async with runtime(database_url, tmp_path, [digest]) as rt:
        await Scheduler().run_once(context(rt), now=T0 + 21 * MINUTE)
        (info,) = await rt.schedules()
        assert info.paused and info.next_run_at == T0 + 30 * MINUTE
    plain = bj.JobDefinition("digest", digest.handler, input_model=Digest, output_model=Sent)
    async with runtime(database_url, tmp_path, [plain]) as rt:
        await Scheduler().run_once(context(rt), now=T0 + 22 * MINUTE)
        assert await rt.schedules() == []


def test_a_definition_schedule_is_checked_when_it_is_defined() -> None:
    class Needs(BaseModel):
        what: str

    with pytest.raises(bj.ConfigurationError, match="buildable from its defaults"):

        @bj.job("needs", schedule=bj.Every(MINUTE))
        async def needs(ctx: bj.JobContext, inp: Needs) -> Sent:
            return Sent(audience=inp.what)

    with pytest.raises(bj.ConfigurationError, match="cron expression '0 9 \\* \\* FUNDAY'"):
        bj.Cron("0 9 * * FUNDAY")
    with pytest.raises(bj.ConfigurationError, match=r"expected bj\.Cron"):
        bj.JobDefinition(
            "d", digest.handler, input_model=Digest, output_model=Sent, schedule="0 9 * * *"
        )


# -- concurrency ----------------------------------------------------------------------------


async def test_two_schedulers_deciding_the_same_ticks_make_one_job_each(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        runtime(database_url, tmp_path, jobs.ALL) as a,
        runtime(database_url, tmp_path, jobs.ALL) as b,
    ):
        await a.schedule("race", jobs.add, {"a": 1}, every=MINUTE, missed="all", start=T0)
        first, second = Scheduler(), Scheduler()
        for minute in range(0, 30, 3):
            now = T0 + minute * MINUTE
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.run_once, context(a), now)
                tg.start_soon(second.run_once, context(b), now)
        found = await ticks(a, "race")
        assert [t.tick for t in found] == [T0 + m * MINUTE for m in range(28)]
        assert {t.outcome for t in found} == {"enqueued"}
        counts = await keys(a)
        assert len(counts) == 28 and set(counts.values()) == {1}
        assert {t.job_id for t in found} == {j.id for j in (await a.list(limit=100)).jobs}


async def test_a_decision_on_a_stale_version_writes_nothing(rt: bj.Runtime) -> None:
    await rt.schedule("v", jobs.add, {"a": 1}, every=MINUTE, start=T0)
    (stored,) = await rt.store.list_schedules(["v"])
    await rt.pause_schedule("v")
    batch = TickBatch("v", stored.version, (TickDecision(T0, "missed", "x"),), T0 + MINUTE)
    assert await rt.store.record_ticks(batch) is None
    assert await rt.schedule_ticks("v") == []
    (fresh,) = await rt.store.list_schedules(["v"])
    assert fresh.next_run_at == T0 and fresh.version == stored.version + 1


async def test_the_leader_enqueues_ticks_as_they_come(rt: bj.Runtime) -> None:
    await rt.schedule("live", jobs.add, {"a": 1}, every=1)
    async with running_worker(rt), anyio.create_task_group() as tg:
        await tg.start(rt.maintenance().run)
        with anyio.fail_after(10):
            while len(await rt.schedule_ticks("live")) < 3:
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    found = await ticks(rt, "live")
    assert {t.outcome for t in found} == {"enqueued"}
    steps = {b.tick - a.tick for a, b in itertools.pairwise(found)}
    assert steps == {timedelta(seconds=1)}
    assert set((await keys(rt)).values()) == {1}


def runtime(url: str, tmp_path: Path, definitions: list[bj.JobDefinition]) -> bj.Runtime:
    return bj.Runtime(
        url, jobs=definitions, load_entrypoints=False, artifacts=str(tmp_path / "artifacts")
    )
