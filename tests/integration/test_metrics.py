"""Prometheus metrics, scraped over HTTP: the counters equal what ran (successes,
retries, failures, a rescue after a lease expired), and the gauges show the leader's
queue snapshot. A real worker process serves `--metrics-port`; the API serves `/metrics`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import brains_jobs as bj
from brains_jobs.maintenance.gauges import SNAPSHOT
from brains_jobs.metrics import COUNTS
from tests.acceptance.conftest import env
from tests.support import jobs as support_jobs

ROOT = Path(__file__).resolve().parents[2]
ADDS = 12  # plain successes, one of them rescued first
FLAKY = 2  # each fails once, then succeeds
PARKED = 3  # in a queue the worker does not take: the gauges see them wait


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker(url: str, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    """`brains-jobs worker` serving metrics on `port`, its output in worker.log."""
    with open(tmp_path / "worker.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "brains_jobs", "worker", "--db", url,
             "--plugin", "tests.support.jobs", "--queues", "default",
             "--metrics-port", str(port), "--metrics-interval", "0.2",
             "--rescue-interval", "0.2", "--artifacts", str(tmp_path)],
            stdout=log, stderr=subprocess.STDOUT, env=env(), cwd=ROOT,
        )  # fmt: skip


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.anyio
async def test_the_worker_serves_counters_of_what_ran_and_the_leaders_gauges(
    database_url: str, tmp_path: Path
) -> None:
    async with bj.Runtime(
        database_url, jobs=support_jobs.ALL, load_entrypoints=False, artifacts=str(tmp_path)
    ) as rt:
        # A job claimed by a worker that dies at once: its lease runs out, and the
        # worker process below rescues it, then runs it.
        ghost = await rt.enqueue(support_jobs.add, {"a": 0})
        (claimed,) = await rt.store.claim(
            worker_id="ghost", queues=None, types=["add"], limit=1, lease=0.3
        )
        assert claimed.id == ghost.id
        await rt.enqueue_many(support_jobs.add, [{"a": i} for i in range(1, ADDS)])
        await rt.enqueue_many(support_jobs.flaky, [{"fail_times": 1}] * FLAKY)
        await rt.enqueue(support_jobs.permanent, {"text": "no"})
        await rt.enqueue_many(support_jobs.add, [{"a": 1}] * PARKED, queue="parked")

        port = free_port()
        proc = start_worker(database_url, port, tmp_path)
        try:
            found = await _scrape_until_done(port)
            snapshot = await rt.store.snapshot(SNAPSHOT)
        finally:
            proc.terminate()
            await anyio.to_thread.run_sync(proc.wait, 20)
    output = (tmp_path / "worker.log").read_text()
    finished = "brains_jobs_jobs_finished_total"
    assert value(found, finished, type="add", queue="default", status="succeeded") == ADDS, output
    assert value(found, finished, type="flaky", queue="default", status="succeeded") == FLAKY
    assert value(found, finished, type="permanent", queue="default", status="failed") == 1
    assert value(found, "brains_jobs_retries_total", type="flaky", queue="default") == FLAKY
    assert value(found, "brains_jobs_retries_total", type="permanent", queue="default") == 0
    assert value(found, "brains_jobs_lease_expired_total", type="add", queue="default") == 1
    # Nothing was enqueued by the worker process itself.
    assert not [k for k in found if k[0] == "brains_jobs_jobs_enqueued_total"]
    # One run-time observation per attempt, one queue-wait observation per claim.
    attempts = ADDS + 2 * FLAKY + 1
    assert value(found, "brains_jobs_job_run_seconds_count", type="add", queue="default") == ADDS
    runs = sum(v for (n, _), v in found.items() if n == "brains_jobs_job_run_seconds_count")
    assert runs == attempts
    waits = sum(v for (n, _), v in found.items() if n == "brains_jobs_job_queue_wait_seconds_count")
    assert waits == attempts  # the ghost's claim was in another process
    # The gauges are the leader's snapshot: the parked jobs wait, the rest is done.
    assert snapshot is not None
    data = json.loads(snapshot.data)
    assert ["parked", "queued", PARKED] in data["depth"]
    depth = "brains_jobs_queue_depth"
    assert value(found, depth, queue="parked", status="queued") == PARKED
    assert value(found, depth, queue="default", status="queued") == 0
    assert value(found, depth, queue="default", status="running") == 0
    assert value(found, "brains_jobs_oldest_queued_age_seconds", queue="parked") > 0
    assert value(found, "brains_jobs_queue_snapshot_timestamp_seconds") > time.time() - 60


async def _scrape_until_done(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Scrape until every job has finished and a snapshot shows the default queue empty."""
    url = f"http://127.0.0.1:{port}/metrics"
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        with anyio.fail_after(30):
            while True:
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    await anyio.sleep(0.1)
                    continue
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/plain")
                found = samples(response.text)
                done = sum(
                    v for (n, _), v in found.items() if n == "brains_jobs_jobs_finished_total"
                )
                settled = (
                    value(found, "brains_jobs_queue_depth", queue="parked", status="queued")
                    == PARKED
                    and value(found, "brains_jobs_queue_depth", queue="default", status="queued")
                    == 0
                    and value(found, "brains_jobs_queue_depth", queue="default", status="running")
                    == 0
                )
                if done >= ADDS + FLAKY + 1 and settled:
                    return found
                await anyio.sleep(0.1)


@pytest.mark.anyio
async def test_the_api_counts_what_it_enqueued_and_reads_the_snapshot(
    database_url: str, tmp_path: Path
) -> None:
    from brains_jobs.maintenance.gauges import QueueGauges
    from brains_jobs.web import create_app, insecure_no_auth

    async with bj.Runtime(
        database_url, jobs=support_jobs.ALL, load_entrypoints=False, artifacts=str(tmp_path)
    ) as rt:
        app = create_app(rt, auth=insecure_no_auth)
        before = COUNTS.enqueued.get(("noop", "default"), 0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            for n in range(3):
                response = await client.post("/api/jobs", json={"type": "noop", "input": {"a": n}})
                assert response.status_code in (200, 201), response.text
            # No snapshot yet: the gauges are empty, the counters are there.
            found = samples((await client.get("/metrics")).text)
            assert not [k for k in found if k[0] == "brains_jobs_queue_depth"]
            assert (
                value(found, "brains_jobs_jobs_enqueued_total", type="noop", queue="default")
                == before + 3
            )
            # The leader's pass writes the snapshot that every scrape reads.
            await rt.maintenance().run_pass(QueueGauges())
            found = samples((await client.get("/metrics")).text)
            assert value(found, "brains_jobs_queue_depth", queue="default", status="queued") == 3
