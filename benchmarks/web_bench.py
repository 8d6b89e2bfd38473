"""HTTP API benchmarks of brains-jobs against a real `brains-jobs serve`, printed as JSON lines.

    python benchmarks/web_bench.py [--db postgresql+asyncpg://postgres@127.0.0.1:5432/test]
                                   [--quick] [--only api_get|sse_fanout|drain_with_dashboard]

One JSON object per measurement on stdout; notes on stderr. Each measurement gets a fresh
database (an SQLite file in a temporary directory, or a PostgreSQL schema that this script
creates and drops: `<prefix>_<n>`, the prefix being the URL's `schema=` or a random
`bj_webbench_<hex>`; an existing schema is never touched) and its own
`python -m brains_jobs serve` subprocess on 127.0.0.1, with
an admin token through BRAINS_JOBS_API_TOKENS and no installed plugin but the benchmark's
job types (`web_bench_jobs.py`, beside this file).

- api_get:              GET /api/jobs/{id} of one finished job by --clients keep-alive
                        connections for --seconds after a warm-up: requests/s, latency
- sse_fanout:           --subscribers streams on /api/events while a worker process runs
                        --sse-jobs jobs that report progress 10 times each: events
                        delivered per second over all subscribers, events per subscriber
- drain_with_dashboard: --drain-jobs queued no-op jobs drained by one worker process, once
                        with nothing watching and once with a dashboard open (5 streams on
                        /api/events and a signed-in GET /dashboard/ every second): jobs/s
                        of both and their ratio

Default configuration: audit trail, leases, heartbeats and events all on; the server logs
at `warning` (no access log). Subprocesses, temporary files and schemas are removed at the
end, also after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import httpx

import brains_jobs as bj

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import web_bench_jobs as jobs  # noqa: E402  (the benchmark's job types, also a plugin)

MEASUREMENTS = ("api_get", "sse_fanout", "drain_with_dashboard")
TOKEN = secrets.token_urlsafe(24)
USER = "bench"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SSE_ID = re.compile(rb"^id: ?(\d+)\r?$", re.MULTILINE)
CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: every subprocess started, stopped at the end whatever happens
PROCESSES: list[subprocess.Popen[bytes]] = []


def note(text: str) -> None:
    print(f"[web_bench] {text}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- databases -------------------------------------------------------------------------


class Databases:
    """Fresh databases, one per measurement: SQLite files in the temporary directory, or
    PostgreSQL schemas named `<prefix>_<n>` (created here, dropped by `drop_all`).
    """

    def __init__(self, db: str, tmp: Path) -> None:
        self.tmp = tmp
        self.sqlite = db == "sqlite"
        self.schemas: list[str] = []
        self.count = 0
        if self.sqlite:
            self.store = "sqlite"
            return
        self.store = "postgresql"
        parts = urlsplit(db)
        if not parts.scheme.startswith(("postgresql", "postgres")):
            raise SystemExit(f"--db: expected 'sqlite' or a postgresql+asyncpg:// URL, got {db!r}")
        query = dict(parse_qsl(parts.query))
        self.prefix = query.pop("schema", None) or f"bj_webbench_{uuid.uuid4().hex[:8]}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", self.prefix):
            raise SystemExit(f"--db: schema {self.prefix!r}: lower-case letters, digits and _")
        self.base = urlunsplit(parts._replace(query=urlencode(query)))
        plain = parts._replace(scheme="postgresql", query="")
        self.dsn = urlunsplit(plain)

    def url(self, schema: str | None) -> str:
        if self.sqlite:
            return f"sqlite+aiosqlite:///{self.tmp / f'{schema}.db'}"
        sep = "&" if "?" in self.base else "?"
        return f"{self.base}{sep}schema={schema}"

    async def fresh(self, name: str) -> tuple[str, str]:
        """A new empty database for measurement `name`: (its URL, its schema or file stem)."""
        self.count += 1
        if self.sqlite:
            stem = f"{name}-{self.count}"
            return self.url(stem), stem
        import asyncpg

        schema = f"{self.prefix}_{self.count}"
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            exists = await conn.fetchval(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", schema
            )
            if exists:
                raise SystemExit(f"schema {schema!r} already exists: give another schema=")
            await conn.execute(f'CREATE SCHEMA "{schema}"')
        finally:
            await conn.close()
        self.schemas.append(schema)
        return self.url(schema), schema

    async def query(self, where: str, sql: str, *params: Any) -> tuple[Any, ...]:
        """One row of `sql` (`?` placeholders; table names unqualified) in database `where`."""
        if self.sqlite:
            path = self.tmp / f"{where}.db"

            def run() -> tuple[Any, ...]:
                conn = sqlite3.connect(path, timeout=30)
                try:
                    return tuple(conn.execute(sql, params).fetchone())
                finally:
                    conn.close()

            return await anyio.to_thread.run_sync(run)
        import asyncpg

        n = 0

        def number(_: re.Match[str]) -> str:
            nonlocal n
            n += 1
            return f"${n}"

        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await conn.execute(f'SET search_path TO "{where}"')
            row = await conn.fetchrow(re.sub(r"\?", number, sql), *params)
        finally:
            await conn.close()
        return tuple(row) if row is not None else ()

    async def drop_all(self) -> None:
        if self.sqlite or not self.schemas:
            return
        import asyncpg

        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            while self.schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schemas.pop()}" CASCADE')
        finally:
            await conn.close()

    def epoch(self, column: str) -> str:
        """SQL for a timestamp column as epoch seconds (SQLite stores them so already)."""
        return column if self.sqlite else f"extract(epoch FROM {column})::float8"


@contextlib.asynccontextmanager
async def runtime(url: str, tmp: Path) -> AsyncIterator[bj.Runtime]:
    async with bj.Runtime(
        url, jobs=jobs.ALL, load_entrypoints=False, artifacts=str(tmp / "artifacts")
    ) as rt:
        yield rt


# -- subprocesses ----------------------------------------------------------------------


def child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(HERE), env.get("PYTHONPATH", "")] if p)
    env["BRAINS_JOBS_PLUGINS_ALLOW"] = ""  # no installed plugin: only web_bench_jobs
    env["BRAINS_JOBS_API_TOKENS"] = f"{TOKEN} {USER} admin"
    env["BRAINS_JOBS_ARTIFACTS"] = str(tmp / "artifacts")
    env.pop("BRAINS_JOBS_API_TOKENS_FILE", None)
    env.pop("BRAINS_JOBS_DATABASE_URL", None)
    return env


def spawn(args: list[str], tmp: Path, log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp / log_name
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "brains_jobs", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(tmp),
            cwd=tmp,
        )
    PROCESSES.append(proc)
    return proc, log


@dataclass
class Server:
    base_url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 30)
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"}, **kwargs
        )

    def cpu(self) -> float | None:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc)
        errors = [line for line in self.log.read_text(errors="replace").splitlines() if line]
        if any("Traceback" in line for line in errors):
            note(f"the server logged errors ({self.log.name}):\n" + "\n".join(errors[-30:]))


async def start_server(url: str, tmp: Path) -> Server:
    port = free_port()
    proc, log = spawn(
        [
            "serve",
            "--database",
            url,
            "--plugin",
            "web_bench_jobs",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        tmp,
        f"server-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return Server(base, proc, log)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text(errors='replace')}")
            await anyio.sleep(0.1)


def start_worker(url: str, tmp: Path, concurrency: int, name: str) -> subprocess.Popen[bytes]:
    proc, _ = spawn(
        [
            "worker",
            "--db",
            url,
            "--plugin",
            "web_bench_jobs",
            "--burst",
            "-c",
            str(concurrency),
            "-l",
            "warning",
        ],
        tmp,
        f"worker-{name}.log",
    )
    return proc


async def wait_process(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    return proc.poll()


# -- event streams ---------------------------------------------------------------------


@dataclass
class Subscriber:
    """One stream on /api/events: how many events it saw, the last `id:`, and when its
    first and last events arrived.
    """

    count: int = 0
    last_id: int = 0
    first_at: float | None = None
    last_at: float | None = None
    connected: bool = False
    ended: bool = False

    async def run(self, client: httpx.AsyncClient, ready: Callable[[], None]) -> None:
        try:
            async with client.stream("GET", "/api/events") as response:
                response.raise_for_status()
                self.connected = True
                ready()
                pending = b""
                async for chunk in response.aiter_raw():
                    pending += chunk
                    cut = pending.rfind(b"\n\n")
                    if cut < 0:
                        continue
                    complete, pending = pending[: cut + 2], pending[cut + 2 :]
                    ids = SSE_ID.findall(complete)
                    if ids:
                        now = time.perf_counter()
                        if self.first_at is None:
                            self.first_at = now
                        self.last_at = now
                        self.count += len(ids)
                        self.last_id = int(ids[-1])
        finally:
            self.ended = True


async def open_streams(
    server: Server, subscribers: list[Subscriber], tg: anyio.abc.TaskGroup
) -> httpx.AsyncClient:
    """Connect every subscriber (each on its own keep-alive connection) and return once all
    have their response headers: from then on, no event is missed.
    """
    client = server.client(
        timeout=httpx.Timeout(30, read=None),
        limits=httpx.Limits(max_connections=len(subscribers) + 1, max_keepalive_connections=0),
    )
    connected = anyio.Event()
    done = 0

    def ready() -> None:
        nonlocal done
        done += 1
        if done == len(subscribers):
            connected.set()

    for sub in subscribers:
        tg.start_soon(sub.run, client, ready)
    with anyio.fail_after(60):
        await connected.wait()
    return client


async def wait_caught_up(subscribers: list[Subscriber], seq: int, timeout: float) -> bool:
    """Wait until every subscriber saw event `seq`; False when one stream ended first or
    `timeout` passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(sub.last_id >= seq for sub in subscribers):
            return True
        if any(sub.ended and sub.last_id < seq for sub in subscribers):
            return False
        await anyio.sleep(0.02)
    return False


# -- measurements ----------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    dbs: Databases
    common: dict[str, Any] = field(default_factory=dict)

    def result(self, name: str, **values: Any) -> dict[str, Any]:
        return {"bench": name, **self.common, **values}


async def api_get(b: Bench) -> dict[str, Any]:
    args = b.args
    url, _ = await b.dbs.fresh("api_get")
    async with runtime(url, b.tmp) as rt:
        handle = await rt.enqueue(jobs.progress, jobs.Steps(steps=3))
        await rt.run_worker(1, burst=True)  # a finished job: attempts, progress, output
        job_id = handle.id
    server = await start_server(url, b.tmp)
    try:
        path = f"/api/jobs/{job_id}"
        latencies: list[float] = []
        errors = 0
        t_measure = time.perf_counter() + args.warmup
        t_end = t_measure + args.seconds

        async def loop(client: httpx.AsyncClient) -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= t_end:
                    return
                response = await client.get(path)
                t1 = time.perf_counter()
                if t0 >= t_measure:
                    latencies.append(t1 - t0)
                    if response.status_code != 200:
                        errors += 1

        clients = [
            server.client(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
            for _ in range(args.clients)
        ]
        note(f"api_get: {args.clients} clients, {args.warmup}s warm-up + {args.seconds}s")
        try:
            async with anyio.create_task_group() as tg:
                for client in clients:
                    tg.start_soon(loop, client)
                await anyio.sleep(max(0.0, t_measure - time.perf_counter()))
                cpu_server0, cpu_client0 = server.cpu(), time.process_time()
                await anyio.sleep(max(0.0, t_end - time.perf_counter()))
                cpu_server1, cpu_client1 = server.cpu(), time.process_time()
        finally:
            for client in clients:
                await client.aclose()
    finally:
        server.stop()
    return b.result(
        "api_get",
        route="GET /api/jobs/{id}",
        clients=args.clients,
        seconds=args.seconds,
        requests=len(latencies),
        errors=errors,
        rps=round(len(latencies) / args.seconds, 1),
        latency_ms={
            "p50": ms(pct(latencies, 50)),
            "p90": ms(pct(latencies, 90)),
            "p99": ms(pct(latencies, 99)),
            "max": ms(max(latencies, default=None)),
        },
        server_cpu_s=_delta(cpu_server0, cpu_server1),
        client_cpu_s=round(cpu_client1 - cpu_client0, 2),
    )


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 2)


async def sse_fanout(b: Bench) -> dict[str, Any]:
    args = b.args
    url, where = await b.dbs.fresh("sse_fanout")
    async with runtime(url, b.tmp) as rt:
        await rt.enqueue_many(jobs.progress, [jobs.Steps()] * args.sse_jobs)
    server = await start_server(url, b.tmp)
    subscribers = [Subscriber() for _ in range(args.subscribers)]
    worker = None
    try:
        async with runtime(url, b.tmp) as rt, anyio.create_task_group() as tg:
            start_seq = await rt.store.last_seq()
            client = await open_streams(server, subscribers, tg)
            note(f"sse_fanout: {len(subscribers)} streams open; worker runs {args.sse_jobs} jobs")
            cpu0 = server.cpu()
            t_worker = time.perf_counter()
            worker = start_worker(url, b.tmp, args.worker_concurrency, "sse")
            while await rt.store.pending_count() > 0:
                await anyio.sleep(0.05)
            t_empty = time.perf_counter()
            await wait_process(worker, 60)
            final_seq = await rt.store.last_seq()
            caught_up = await wait_caught_up(subscribers, final_seq, args.catch_up_timeout)
            t_caught = time.perf_counter()
            cpu1 = server.cpu()
            tg.cancel_scope.cancel()
        await client.aclose()
    finally:
        if worker is not None:
            stop_process(worker)
        server.stop()
    (expected,) = await b.dbs.query(
        where, "SELECT count(*) FROM job_events WHERE seq > ? AND seq <= ?", start_seq, final_seq
    )
    counts = [sub.count for sub in subscribers]
    rates = [
        sub.count / (sub.last_at - sub.first_at)
        for sub in subscribers
        if sub.first_at is not None and sub.last_at is not None and sub.last_at > sub.first_at
    ]
    firsts = [sub.first_at for sub in subscribers if sub.first_at is not None]
    lasts = [sub.last_at for sub in subscribers if sub.last_at is not None]
    span = (max(lasts) - min(firsts)) if firsts and lasts else None
    return b.result(
        "sse_fanout",
        subscribers=len(subscribers),
        jobs=args.sse_jobs,
        progress_reports_per_job=10,
        events_expected_per_subscriber=int(expected),
        events_per_subscriber_min=min(counts),
        events_per_subscriber_max=max(counts),
        all_subscribers_same_count=min(counts) == max(counts) == int(expected),
        all_caught_up=caught_up,
        events_delivered=sum(counts),
        events_per_s_sum=round(sum(rates), 1),
        events_per_s_overall=round(sum(counts) / span, 1) if span else None,
        worker_drain_s=round(t_empty - t_worker, 3),
        catch_up_after_drain_s=round(t_caught - t_empty, 3) if caught_up else None,
        server_cpu_s=_delta(cpu0, cpu1),
    )


async def dashboard_poller(server: Server, stats: dict[str, Any]) -> None:
    """A signed-in browser on the overview: sign in through the form, then GET /dashboard/
    once a second (the next at once when one takes longer).
    """
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        page = await http.get("/dashboard/login")
        found = CSRF.search(page.text)
        if found is None:
            raise RuntimeError("no CSRF token on /dashboard/login")
        signed = await http.post(
            "/dashboard/login",
            data={"csrf": found.group(1), "token": TOKEN, "user": USER, "next": "/dashboard/"},
            headers={"Origin": server.base_url},
        )
        if signed.status_code != 303 or "bj_session" not in http.cookies:
            raise RuntimeError(
                f"dashboard sign-in failed: {signed.status_code} {signed.text[:200]}"
            )
        latencies: list[float] = stats.setdefault("latencies", [])
        stats["errors"] = 0
        tick = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            response = await http.get("/dashboard/")
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 200 or "Sign in" in response.text[:2000]:
                stats["errors"] += 1
            tick += 1.0
            await anyio.sleep(max(0.0, tick - time.perf_counter()))


async def one_drain(b: Bench, watched: bool) -> dict[str, Any]:
    args = b.args
    label = "watched" if watched else "unwatched"
    url, where = await b.dbs.fresh(f"drain_{label}")
    async with runtime(url, b.tmp) as rt:
        ids: list[int] = []
        for start in range(0, args.drain_jobs, 5000):
            chunk = [jobs.Nothing(i=i) for i in range(start, min(start + 5000, args.drain_jobs))]
            ids += [h.id for h in await rt.enqueue_many(jobs.noop, chunk)]
    server = await start_server(url, b.tmp)
    subscribers = [Subscriber() for _ in range(args.watchers if watched else 0)]
    dash: dict[str, Any] = {}
    worker = None
    try:
        async with runtime(url, b.tmp) as rt, anyio.create_task_group() as tg:
            client = None
            if watched:
                client = await open_streams(server, subscribers, tg)
                tg.start_soon(dashboard_poller, server, dash)
                await anyio.sleep(0.5)  # the first page is served before the drain
            note(f"drain ({label}): {args.drain_jobs} jobs, worker -c {args.worker_concurrency}")
            cpu0, bench_cpu0 = server.cpu(), time.process_time()
            wall0 = time.time()
            worker = start_worker(url, b.tmp, args.worker_concurrency, label)
            while await rt.store.pending_count() > 0:
                await anyio.sleep(0.05)
            empty_at = time.time()
            cpu1, bench_cpu1 = server.cpu(), time.process_time()
            final_seq = await rt.store.last_seq()
            behind = [final_seq - sub.last_id for sub in subscribers]
            await wait_process(worker, 60)
            tg.cancel_scope.cancel()
        if client is not None:
            await client.aclose()
    finally:
        if worker is not None:
            stop_process(worker)
        server.stop()
    first_start, last_finish, finished = await b.dbs.query(
        where,
        f"SELECT min({b.dbs.epoch('started_at')}), max({b.dbs.epoch('finished_at')}), count(*)"
        " FROM jobs WHERE id BETWEEN ? AND ? AND status = 'succeeded'",
        min(ids),
        max(ids),
    )
    drain_s = empty_at - first_start
    out: dict[str, Any] = {
        "jobs_per_s": round(args.drain_jobs / drain_s, 1),
        "drain_s": round(drain_s, 3),
        "succeeded": int(finished),
        "first_start_to_last_finish_s": round(last_finish - first_start, 3),
        "worker_spawn_to_first_start_s": round(first_start - wall0, 3),
        "server_cpu_s": _delta(cpu0, cpu1),
        "bench_cpu_s": round(bench_cpu1 - bench_cpu0, 2),
    }
    if watched:
        lat = dash.get("latencies", [])
        out["sse_subscribers"] = len(subscribers)
        out["sse_events_seen_min"] = min(sub.count for sub in subscribers)
        out["sse_behind_at_empty_max"] = max(behind)
        out["dashboard_fetches"] = len(lat)
        out["dashboard_errors"] = dash.get("errors", 0)
        out["dashboard_ms"] = {"p50": ms(pct(lat, 50)), "max": ms(max(lat, default=None))}
    return out


async def drain_with_dashboard(b: Bench) -> dict[str, Any]:
    plain = await one_drain(b, watched=False)
    watched = await one_drain(b, watched=True)
    ratio = watched["jobs_per_s"] / plain["jobs_per_s"]
    return b.result(
        "drain_with_dashboard",
        jobs=b.args.drain_jobs,
        worker_concurrency=b.args.worker_concurrency,
        dashboard_client="GET /dashboard/ with the bj_session cookie (from /dashboard/login)",
        unwatched=plain,
        watched=watched,
        unwatched_jobs_per_s=plain["jobs_per_s"],
        watched_jobs_per_s=watched["jobs_per_s"],
        ratio=round(ratio, 3),
        within_10_percent=ratio >= 0.9,
    )


BENCHES = {
    "api_get": api_get,
    "sse_fanout": sse_fanout,
    "drain_with_dashboard": drain_with_dashboard,
}


async def main(args: argparse.Namespace, tmp: Path, dbs: Databases) -> None:
    bench = Bench(
        args,
        tmp,
        dbs,
        {"store": dbs.store, "python": platform.python_version(), "quick": args.quick},
    )
    try:
        for name in args.only or MEASUREMENTS:
            t0 = time.perf_counter()
            emit(await BENCHES[name](bench))
            note(f"{name}: {time.perf_counter() - t0:.1f}s")
    finally:
        with anyio.CancelScope(shield=True):
            await dbs.drop_all()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="sqlite", help="'sqlite' or a postgresql+asyncpg:// URL")
    parser.add_argument("--quick", action="store_true", help="smaller figures: about 30 s")
    parser.add_argument("--only", action="append", choices=MEASUREMENTS, help="repeatable")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--subscribers", type=int)
    parser.add_argument("--sse-jobs", type=int)
    parser.add_argument("--drain-jobs", type=int)
    parser.add_argument("--watchers", type=int, default=5, help="SSE streams of the dashboard")
    parser.add_argument("--worker-concurrency", type=int, default=10)
    parser.add_argument("--catch-up-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    defaults = (
        {"seconds": 3.0, "subscribers": 50, "sse_jobs": 200, "drain_jobs": 10_000}
        if args.quick
        else {"seconds": 5.0, "subscribers": 100, "sse_jobs": 500, "drain_jobs": 20_000}
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _interrupt(signum: int, frame: object) -> None:
    # Raised wherever the main thread is, even inside the library's shielded store calls
    # (which would hold off a cancellation); the cleanup below then runs synchronously.
    # The tasks it leaves behind are asyncio's to cancel, without a report each.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    raise KeyboardInterrupt


if __name__ == "__main__":
    arguments = parse()
    os.environ.setdefault("BRAINS_JOBS_LOG_LEVEL", "warning")
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    folder = Path(tempfile.mkdtemp(prefix="bj-web-bench-"))
    databases = Databases(arguments.db, folder)
    code = 0
    try:
        anyio.run(main, arguments, folder, databases)
    except KeyboardInterrupt:
        code = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: the cleanup goes on
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if code:
            note("interrupted: stopping the subprocesses, removing the temporary files")
        for process in PROCESSES:
            stop_process(process, grace=5)
        if databases.schemas:  # left behind by an interruption
            with contextlib.suppress(Exception):
                anyio.run(databases.drop_all)
        shutil.rmtree(folder, ignore_errors=True)
    sys.exit(code)
