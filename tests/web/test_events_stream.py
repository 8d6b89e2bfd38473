"""`GET /api/events`: server-sent events that a client resumes with `Last-Event-ID`
without gap or repeat, while a worker in another process writes them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.web.conftest import ROOT, Server, env, start_server, stop_server


def sse(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """`("event", (seq, data))` for each event and `("comment", text)` for each comment."""
    seq: int | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield "event", (seq, json.loads("\n".join(data)))
            seq, data = None, []


def test_resume_with_last_event_id_misses_nothing(server: Server) -> None:
    queue = f"sse-{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    with server.client("sse", timeout=httpx.Timeout(30, read=15)) as client:
        ids = []
        for _ in range(6):
            response = client.post(
                "/api/jobs",
                json={"type": "sleep", "input": {"seconds": 0.6, "ledger": False}, "queue": queue},
            )
            assert response.status_code == 201
            ids.append(response.json()["id"])
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "brains_jobs",
                "worker",
                "--db",
                server.database_url,
                "--plugin",
                "tests.support.jobs",
                "--queues",
                queue,
                "--concurrency",
                "2",
                "--burst",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env(),
            cwd=ROOT,
        )
        try:
            with client.stream("GET", "/api/events", params={"after": 0}) as first:
                assert first.status_code == 200
                for kind, value in sse(first):
                    if kind == "event":
                        seq, event = value
                        assert seq == event["seq"]
                        seen.append(seq)
                        if event["kind"] == "progress" and len(seen) >= 10:
                            break
            # The worker goes on while no one listens.
            time.sleep(0.8)
            reconnected = datetime.now(UTC)
            replayed_before_reconnect = 0
            finished: set[int] = set()
            headers = {"Last-Event-ID": str(seen[-1])}
            with client.stream("GET", "/api/events", headers=headers) as second:
                assert second.status_code == 200
                for kind, value in sse(second):
                    if kind != "event":
                        continue
                    seq, event = value
                    seen.append(seq)
                    if datetime.fromisoformat(event["at"]) < reconnected:
                        replayed_before_reconnect += 1
                    if event["kind"] == "status" and event["status"] == "succeeded":
                        finished.add(event["job_id"])
                        if finished == set(ids):
                            break
            assert worker.wait(30) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        truth = sorted(
            event["seq"]
            for job_id in ids
            for event in client.get(f"/api/jobs/{job_id}/events").json()["events"]
        )
    assert seen == truth  # in order, no gap, no repeat
    assert replayed_before_reconnect > 0  # some came from the table, written while away

    with server.client("admin", timeout=httpx.Timeout(30, read=15)) as admin:
        mine = []
        params = {"after": 0, "owner": "sse-user"}
        with admin.stream("GET", "/api/events", params=params) as stream:
            for kind, value in sse(stream):
                if kind == "event":
                    mine.append(value[0])
                    if len(mine) == len(truth):
                        break
    assert mine == truth


def test_filters_and_heartbeats(server: Server) -> None:
    with server.client("alice", timeout=httpx.Timeout(30, read=15)) as alice:
        job = alice.post("/api/jobs", json={"type": "noop", "input": {"a": 1}, "queue": "parked"})
        job_id = job.json()["id"]
        alice.post(f"/api/jobs/{job_id}/move", json={"priority": 1})
        alice.post(f"/api/jobs/{job_id}/cancel")
        events = []
        pings = 0
        params: dict[str, Any] = {"job_id": job_id, "after": 0, "kind": ["status"]}
        with alice.stream("GET", "/api/events", params=params) as stream:
            assert stream.headers["cache-control"] == "no-cache"
            for kind, value in sse(stream):
                if kind == "event":
                    events.append(value[1])
                elif value == "ping":
                    pings += 1
                    if pings == 2:
                        break
    assert [(e["job_id"], e["status"]) for e in events] == [
        (job_id, "queued"),
        (job_id, "cancelled"),
    ]
    with server.client("alice") as alice:
        bad = alice.get("/api/events", headers={"Last-Event-ID": "nope"})
        assert bad.status_code == 422
        assert bad.json()["error"]["fields"][0]["field"] == "Last-Event-ID"


def test_open_streams_do_not_hold_a_stopping_server(tmp_path: Path) -> None:
    live = start_server(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", tmp_path)
    try:
        with live.client("admin", timeout=httpx.Timeout(30, read=15)) as admin:
            with admin.stream("GET", "/api/events") as stream:
                assert stream.status_code == 200
                started = time.monotonic()
                live.proc.send_signal(signal.SIGTERM)
                for _ in sse(stream):
                    pass  # the server ends the stream
            assert live.proc.wait(10) in (0, -signal.SIGTERM)
            assert time.monotonic() - started < 5
    finally:
        stop_server(live)
