"""The fault suite's harness: a scenario runs real worker processes against a real
database, breaks things on purpose, lets the queue drain, then checks what happened from
the store and from the ledger that the handlers write (`tests/faults/jobs.py`).

A scenario (`Scenario`) creates its database (an SQLite file, or a fresh PostgreSQL
schema dropped afterwards), starts, kills and restarts `python -m brains_jobs worker`
processes, enqueues jobs, waits for the queue to drain, and then settles: it stops every
worker with SIGTERM, waits until any lease still held has expired, runs one pass of the
lease rescuer (`brains_jobs.testing.rescue`), reads every job and the ledger, checks the
invariants below, and appends one result row to the results file
(`tests/faults/report.py` prints them): scenario, store, jobs, lost, double effects,
left running, rescues, time to recover.

Definitions (the ledger lines are `job_id attempt pid event monotonic_time`, with
`event` one of `start`, `effect`, `end`; see `tests/faults/jobs.py`):

- **attempt**: one call of a handler, named by (job id, attempt number).
- **alive**: an attempt is alive from its `start` line until its `end` line; an attempt
  without an `end` line (its process died) is alive until its process died, as seen by
  the harness's `waitpid` (the process of every attempt is one the harness started).
- **effect**: an `effect` line; a handler writes it just before it returns its output.
- **double effect**: a job with effect lines from two attempts that were alive at the
  same time (the later one started before the earlier one ended). This is what the
  runtime promises never to do (its delivery is at least once, never twice at once).
- **repeat** (not a failure): a job with effect lines from two attempts that did not
  overlap; at-least-once delivery allows it, when a worker died after the effect and
  before its result was committed. Reported in the notes.
- **overlap**: a job with two attempts alive at the same time, with or without effects.
- **lost**: a job the scenario enqueued that is missing from the store, or whose final
  status is not one the scenario expects of it (by default: succeeded), or that
  succeeded with an output naming an attempt that left no effect line.
- **left running**: a job of the store that is still not final (queued, running,
  waiting) after the drain, the workers' shutdown, the expiry of every lease and one
  rescue pass.
- **rescues**: status changes made by the lease rescuer (`actor = 'rescuer'`).
- **time to recover**: seconds from the last fault the scenario injected until the
  queue was drained (nothing queued or running).

Invariants checked after every scenario (each break is a failure of the test, and the
row's verdict names it):

1. every job ends in exactly one final state: its stored status is final, its status
   events end with that status, and no final status event is followed by anything but
   a `queued` asked for by someone (a retry);
2. no double effect, and no overlap either (the runtime keeps an attempt's lease while
   its handler runs on past a timeout or a cancellation, and fences itself off before
   its lease can expire);
3. per job, every `start` line has its own attempt number (numbers never repeat), and
   the job's recorded `attempts` is at least the highest attempt that started;
4. nothing is left running once leases have expired and one rescue pass ran;
5. a stale completion is rejected: `store.finish` with an old lease token of a job
   (sampled from the running jobs while the scenario ran) returns the job's id as
   rejected and changes nothing;
6. every worker stopped with SIGTERM at the end exits, with status 0.

Sizes: the short run (the default) uses small numbers; BRAINS_JOBS_FAULTS=full runs
the full version (`scale(short, full)`).

Run as a module, this file is also the helper process of some scenarios:
`python -m tests.faults.harness enqueue|unique ...` (see `main`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

import brains_jobs as bj
from brains_jobs import testing
from brains_jobs.store import Outcome
from tests.conftest import PG_DSN
from tests.faults import jobs as fault_jobs
from tests.faults.report import results_path

ROOT = Path(__file__).resolve().parents[2]
MODE = "full" if os.environ.get("BRAINS_JOBS_FAULTS", "").lower() == "full" else "short"
FULL = MODE == "full"
FINAL = frozenset({"succeeded", "failed", "cancelled", "skipped"})


def scale(short: Any, full: Any) -> Any:
    """`short` in the short run, `full` in the full one."""
    return full if FULL else short


# -- the ledger ---------------------------------------------------------------------------


@dataclass
class Attempt:
    """What the ledger says about one attempt."""

    job_id: int
    attempt: int
    pid: int
    start: float
    starts: int = 1
    effect: float | None = None
    effects: int = 0
    end: float | None = None


def read_ledger(path: Path) -> dict[tuple[int, int], Attempt]:
    """The ledger's attempts by (job id, attempt number)."""
    found: dict[tuple[int, int], Attempt] = {}
    if not path.exists():
        return found
    with path.open() as lines:
        for line in lines:
            parts = line.split()
            if len(parts) != 5:
                continue  # a line cut short by a process killed while writing it
            job_id, attempt, pid = int(parts[0]), int(parts[1]), int(parts[2])
            event, at = parts[3], float(parts[4])
            key = (job_id, attempt)
            entry = found.get(key)
            if event == "start":
                if entry is None:
                    found[key] = Attempt(job_id, attempt, pid, at)
                else:
                    entry.starts += 1
                continue
            if entry is None:  # an end or effect without its start: keep it visible
                entry = found[key] = Attempt(job_id, attempt, pid, at, starts=0)
            if event == "effect":
                entry.effects += 1
                entry.effect = at if entry.effect is None else min(entry.effect, at)
            elif event == "end":
                entry.end = at if entry.end is None else max(entry.end, at)
    return found


# -- processes ----------------------------------------------------------------------------


class Proc:
    """A process the harness started. A thread waits for it, so that the moment it died
    is known to a few milliseconds (the end of the attempts it was running).
    """

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str], role: str) -> None:
        self.role = role
        self.log_path = log_path
        self._log = log_path.open("w")
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, text=True
        )
        self.pid = self.popen.pid
        self.started_at = time.monotonic()
        self.died_at: float | None = None
        self.returncode: int | None = None
        self.signals: list[str] = []
        self._done = threading.Event()
        threading.Thread(target=self._watch, name=f"watch {self.pid}", daemon=True).start()

    def _watch(self) -> None:
        code = self.popen.wait()
        self.died_at = time.monotonic()
        self.returncode = code
        self._done.set()

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            self.signals.append(sig.name)
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.wait(timeout)
        return self.returncode

    def text(self) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rss(self) -> int | None:
        """Resident memory in bytes, None once the process is gone."""
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def close(self) -> None:
        if self.alive:
            self.signal(signal.SIGKILL)
            self.wait(10)
        self._log.close()


# -- raw SQL beside the library -------------------------------------------------------------


class _Loop:
    """An asyncio loop in a thread of its own, for asyncpg calls from synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _pg_connection_error(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CannotConnectNowError
        | OSError
        | TimeoutError,
    )


class Hold:
    """A transaction that holds a lock on the job table until `release()`."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._release()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Database:
    """The scenario's database through a connection of the test's own (not the
    library's): for reads the library has no call for, rows written behind its back,
    and locks. SQL uses `?` placeholders on both stores.
    """

    def __init__(self, store: str, *, path: Path | None = None, schema: str | None = None):
        self.store = store
        self.path = path
        self.schema = schema
        self._sqlite: sqlite3.Connection | None = None
        self._loop: _Loop | None = _Loop() if store == "postgresql" else None
        self._pg: Any = None

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            assert self.path is not None
            self._sqlite = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        return self._sqlite

    async def _pg_connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(
            PG_DSN,
            timeout=5,
            server_settings={"search_path": f'"{self.schema}"', "application_name": "faults"},
        )

    @staticmethod
    def _dollars(sql: str) -> str:
        counter = iter(range(1, 1000))
        return re.sub(r"\?", lambda _m: f"${next(counter)}", sql)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement (reconnecting once after a lost PostgreSQL connection)."""
        if self.store == "sqlite":
            return [tuple(r) for r in self._sqlite_connection().execute(sql, args).fetchall()]
        assert self._loop is not None
        statement = self._dollars(sql)

        async def fetch() -> list[tuple[Any, ...]]:
            if self._pg is None or self._pg.is_closed():
                self._pg = await self._pg_connect()
            return [tuple(r) for r in await self._pg.fetch(statement, *args)]

        try:
            return self._loop.run(fetch())
        except Exception as exc:
            if not _pg_connection_error(exc):
                raise
            self._loop.run(self._pg_drop())
            return self._loop.run(fetch())

    async def _pg_drop(self) -> None:
        conn, self._pg = self._pg, None
        if conn is not None:
            conn.terminate()

    def value(self, sql: str, *args: Any) -> Any:
        rows = self.query(sql, *args)
        return rows[0][0] if rows else None

    def hold(self) -> Hold:
        """Lock the job table against writes (reads go on) until the hold is released:
        on SQLite a `BEGIN IMMEDIATE` transaction, on PostgreSQL `LOCK TABLE jobs IN
        EXCLUSIVE MODE`.
        """
        if self.store == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")

            def release_sqlite() -> None:
                conn.execute("COMMIT")
                conn.close()

            return Hold(release_sqlite)
        assert self._loop is not None
        loop = self._loop

        async def lock() -> Any:
            conn = await self._pg_connect()
            await conn.execute("BEGIN")
            await conn.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
            return conn

        conn = loop.run(lock())

        async def unlock() -> None:
            try:
                await conn.execute("COMMIT")
            finally:
                await conn.close()

        return Hold(lambda: loop.run(unlock()))

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._loop is not None:
            if self._pg is not None:
                with contextlib.suppress(Exception):
                    self._loop.run(self._pg.close(), timeout=10)
                self._pg = None
            self._loop.close()
            self._loop = None


# -- the scenario -------------------------------------------------------------------------


@dataclass
class Settled:
    """What a scenario looks like once settled: the jobs (raw rows) and the ledger."""

    jobs: dict[int, dict[str, Any]]
    attempts: dict[tuple[int, int], Attempt]
    by_job: dict[int, list[Attempt]] = field(default_factory=dict)
    rescued: list[int] = field(default_factory=list)


class Scenario:
    """One fault scenario on one store (see the module docstring)."""

    def __init__(self, *, store: str, url: str, tmp_path: Path, db: Database, name: str) -> None:
        self.store = store
        self.url = url
        self.tmp_path = tmp_path
        self.db = db
        self.name = name
        self.ledger = tmp_path / "ledger.txt"
        self.artifacts = tmp_path / "artifacts"
        self.procs: list[Proc] = []
        self.faults: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self.notes: dict[str, Any] = {}
        self.old_leases: dict[int, set[str]] = defaultdict(set)
        self.leases_used: set[float] = set()
        self.begun = time.monotonic()
        self.drained_at: float | None = None
        self.max_payload: int | None = None
        self.row: dict[str, Any] | None = None
        self.settled: Settled | None = None
        self._last_sample = 0.0

    # -- processes ------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process the scenario starts: the suite importable, no
        installed plugins, the ledger, artifacts in the scenario's folder.
        """
        result = dict(os.environ)
        result["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(ROOT), result.get("PYTHONPATH", "")] if p
        )
        result["BRAINS_JOBS_PLUGINS_ALLOW"] = "none"
        result["BRAINS_JOBS_TEST_LEDGER"] = str(self.ledger)
        result["BRAINS_JOBS_ARTIFACTS"] = str(self.artifacts)
        result.update(extra)
        return result

    def start_worker(
        self,
        *args: str,
        url: str | None = None,
        plugin: str = "tests.faults.jobs",
        lease: float = 1.0,
        wait: bool = True,
        **extra: str,
    ) -> Proc:
        """Start `brains_jobs worker` with the fault job types; with `wait`, return once
        it runs (and so handles signals).
        """
        self.leases_used.add(lease)
        argv = [sys.executable, "-m", "brains_jobs", "worker", "--db", url or self.url]
        argv += ["--plugin", plugin, *args]
        env = self.env(BRAINS_JOBS_LEASE=str(lease), **extra)
        log = self.tmp_path / f"worker-{len(self.procs)}.log"
        proc = Proc(argv, log, env, "worker")
        self.procs.append(proc)
        if wait:
            self.wait_ready(proc)
        return proc

    def start_helper(self, *args: str, name: str = "helper") -> Proc:
        """Start `python -m tests.faults.harness ARGS` (see `main`)."""
        argv = [sys.executable, "-m", "tests.faults.harness", *args]
        log = self.tmp_path / f"{name}-{len(self.procs)}.log"
        proc = Proc(argv, log, self.env(), name)
        self.procs.append(proc)
        return proc

    @staticmethod
    def is_ready(proc: Proc) -> bool:
        """True once a worker runs (and so handles signals)."""
        return proc.alive and " started: concurrency" in proc.text()

    def wait_ready(self, proc: Proc, timeout: float = 60) -> None:
        wait_until(
            lambda: " started: concurrency" in proc.text() or not proc.alive,
            timeout,
            "a worker to start",
        )
        if not proc.alive:
            raise AssertionError(f"a worker died at start:\n{proc.text()[-3000:]}")

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "worker"]

    def alive_workers(self) -> list[Proc]:
        return [p for p in self.workers() if p.alive]

    def kill(self, proc: Proc, sig: signal.Signals = signal.SIGKILL, what: str = "") -> None:
        """Send `sig` (SIGKILL by default) and, for SIGKILL, wait until the process is
        gone; the moment counts as a fault.
        """
        self.sample_leases(force=True)
        proc.signal(sig)
        if sig is signal.SIGKILL:
            proc.wait(10)
        self.fault(what or f"{sig.name} {proc.pid}")

    def fault(self, what: str) -> None:
        """Note that a fault was injected now."""
        self.faults.append((time.monotonic(), what))

    # -- the library, in this process --------------------------------------------------------

    def runtime(self, **options: Any) -> bj.Runtime:
        """A runtime on the scenario's database knowing every fault job type (not open)."""
        options.setdefault("load_entrypoints", False)
        options.setdefault("artifacts", str(self.artifacts))
        if self.max_payload is not None:
            options.setdefault("max_payload", self.max_payload)
        return bj.Runtime(self.url, jobs=fault_jobs.EVERY, **options)

    def call(self, fn: Callable[[bj.Runtime], Any], **options: Any) -> Any:
        """`await fn(rt)` on a fresh runtime, from synchronous code."""

        async def go() -> Any:
            async with self.runtime(**options) as rt:
                return await fn(rt)

        return anyio.run(go)

    def enqueue(
        self, job: bj.JobDefinition | str, inputs: Iterable[Any], **options: Any
    ) -> list[int]:
        """Enqueue jobs (5,000 per transaction); their ids."""
        items = list(inputs)

        async def go(rt: bj.Runtime) -> list[int]:
            ids: list[int] = []
            for start in range(0, len(items), 5000):
                handles = await rt.enqueue_many(job, items[start : start + 5000], **options)
                ids += [h.id for h in handles]
            return ids

        return self.call(go)

    def pending(self, exclude_types: Collection[str] = ()) -> int | None:
        """Jobs queued or running (None while the database cannot be reached)."""
        sql = "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
        args: list[str] = []
        for name in exclude_types:
            sql += " AND type <> ?"
            args.append(name)
        try:
            return int(self.db.value(sql, *args))
        except Exception:
            return None

    def count(self, where: str = "1=1", *args: Any) -> int:
        return int(self.db.value(f"SELECT count(*) FROM jobs WHERE {where}", *args))

    def sample_leases(self, *, force: bool = False) -> None:
        """Remember lease tokens of running jobs: once their jobs moved on, a completion
        with them is stale and must be rejected.
        """
        now = time.monotonic()
        if not force and now - self._last_sample < 1.0:
            return
        self._last_sample = now
        if sum(len(t) for t in self.old_leases.values()) >= 40:
            return
        try:
            rows = self.db.query(
                "SELECT id, lease_token FROM jobs WHERE status = 'running'"
                " AND lease_token IS NOT NULL ORDER BY id LIMIT 4"
            )
        except Exception:
            return
        for job_id, token in rows:
            self.old_leases[int(job_id)].add(str(token))

    def wait_drained(
        self,
        timeout: float,
        *,
        tick: Callable[[], None] | None = None,
        interval: float = 0.3,
        exclude_types: Collection[str] = (),
    ) -> bool:
        """Wait until nothing is queued or running (calling `tick` every round); a drain
        that does not finish in `timeout` seconds is a failure of the scenario.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            self.sample_leases()
            if self.pending(exclude_types) == 0:
                self.drained_at = time.monotonic()
                return True
            time.sleep(interval)
        left = self.pending(exclude_types)
        self.fail(f"the queue did not drain within {timeout:.0f}s ({left} job(s) left)")
        return False

    # -- checks -----------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        """Record a broken expectation (the test fails at `finish`, after its row)."""
        self.failures.append(message)

    def check(self, condition: object, message: str) -> bool:
        if not condition:
            self.fail(message)
        return bool(condition)

    def stop_workers(self, timeout: float = 30.0) -> None:
        """SIGTERM every live worker; each must exit with status 0 within `timeout`."""
        alive = self.alive_workers()
        for proc in alive:  # signals are handled once a worker runs
            with contextlib.suppress(AssertionError):
                self.wait_ready(proc)
        for proc in alive:
            proc.signal(signal.SIGTERM)
        for proc in alive:
            code = proc.wait(timeout)
            if code is None:
                self.fail(f"worker {proc.pid} did not stop within {timeout:.0f}s of SIGTERM")
                proc.signal(signal.SIGKILL)
                proc.wait(10)
            elif code != 0:
                self.fail(f"worker {proc.pid} exited with status {code} on SIGTERM")

    def settle(
        self,
        ids: Iterable[int] | None = None,
        *,
        expect: Mapping[int, Collection[str]] | None = None,
        default: Collection[str] = ("succeeded",),
    ) -> Settled:
        """Stop the workers, let leases expire, run one rescue pass, then check the
        invariants of the module docstring. `ids` are the jobs the scenario tracks
        (None: every job of the store); `expect` gives the final statuses allowed for
        some of them (`default` for the others).
        """
        self.stop_workers()
        for proc in self.procs:  # helpers still running are of no use now
            if proc.alive:
                proc.signal(signal.SIGKILL)
                proc.wait(10)
        running = self.count("status = 'running'")
        if running:
            time.sleep(max(self.leases_used or {1.0}) + 0.5)
        rescued = self.call(testing.rescue)
        jobs = self._jobs()
        attempts = read_ledger(self.ledger)
        by_job: dict[int, list[Attempt]] = defaultdict(list)
        for entry in attempts.values():
            by_job[entry.job_id].append(entry)
        for entries in by_job.values():
            entries.sort(key=lambda a: a.start)
        settled = Settled(jobs, attempts, by_job, list(rescued))
        self.settled = settled
        tracked = list(jobs) if ids is None else list(ids)
        expect = expect or {}
        self._check(settled, tracked, expect, default)
        return settled

    def _jobs(self) -> dict[int, dict[str, Any]]:
        rows = self.db.query(
            "SELECT id, type, status, attempts, max_attempts, crashes, output FROM jobs"
        )
        found = {}
        for job_id, job_type, status, attempts, max_attempts, crashes, output in rows:
            parsed = None
            if status == "succeeded" and output is not None:
                try:
                    parsed = json.loads(output)
                except ValueError:
                    parsed = output
            found[int(job_id)] = {
                "type": job_type,
                "status": status,
                "attempts": int(attempts),
                "max_attempts": int(max_attempts),
                "crashes": int(crashes),
                "output": parsed,
            }
        return found

    def _end_of(self, attempt: Attempt) -> float:
        if attempt.end is not None:
            return attempt.end
        for proc in self.procs:
            if proc.pid == attempt.pid and proc.died_at is not None:
                return proc.died_at
        return math.inf

    def _check(
        self,
        settled: Settled,
        tracked: list[int],
        expect: Mapping[int, Collection[str]],
        default: Collection[str],
    ) -> None:
        jobs = settled.jobs
        # Lost: missing, or not in a status the scenario expects.
        lost = []
        for job_id in tracked:
            job = jobs.get(job_id)
            allowed = expect.get(job_id, default)
            if job is None or job["status"] not in allowed:
                lost.append(job_id)
        # Succeeded with an output naming an attempt that left no effect line.
        phantom = []
        for job_id, job in jobs.items():
            out = job["output"]
            if job["status"] != "succeeded" or not isinstance(out, dict):
                continue
            if job_id not in settled.by_job or not isinstance(out.get("attempt"), int):
                continue
            entry = settled.attempts.get((job_id, out["attempt"]))
            if entry is None or entry.effect is None:
                phantom.append(job_id)
        left = [i for i, j in jobs.items() if j["status"] not in FINAL]
        # Attempts: numbers never repeat; the record counts at least what started.
        reused = sorted({a.job_id for a in settled.attempts.values() if a.starts > 1})
        undercounted = [
            job_id
            for job_id, entries in settled.by_job.items()
            if job_id in jobs and max(a.attempt for a in entries) > jobs[job_id]["attempts"]
        ]
        # Overlaps and double effects.
        overlaps, doubles, repeats = [], [], []
        for job_id, entries in settled.by_job.items():
            overlapping = False
            double = False
            for i, first in enumerate(entries):
                for second in entries[i + 1 :]:
                    if second.start < self._end_of(first):
                        overlapping = True
                        if first.effect is not None and second.effect is not None:
                            double = True
            if overlapping:
                overlaps.append(job_id)
            if double:
                doubles.append(job_id)
            if sum(a.effects for a in entries) > 1:
                repeats.append(job_id)
        # One final state, as the audit trail tells it.
        final_list = ", ".join(f"'{s}'" for s in sorted(FINAL))
        after_final = self.db.query(
            "SELECT DISTINCT job_id FROM (SELECT job_id, status, actor, LAG(status) OVER"
            " (PARTITION BY job_id ORDER BY seq) AS prev FROM job_events"
            " WHERE kind = 'status') AS t"
            f" WHERE prev IN ({final_list}) AND NOT (status = 'queued'"
            " AND actor IS NOT NULL AND actor <> 'rescuer')"
        )
        mismatched = self.db.query(
            "SELECT j.id FROM jobs AS j JOIN (SELECT job_id, status, ROW_NUMBER() OVER"
            " (PARTITION BY job_id ORDER BY seq DESC) AS rn FROM job_events"
            " WHERE kind = 'status') AS e ON e.job_id = j.id AND e.rn = 1"
            " WHERE e.status <> j.status"
        )
        rescues = int(
            self.db.value(
                "SELECT count(*) FROM job_events WHERE kind = 'status' AND actor = 'rescuer'"
            )
        )
        stale = self._stale_completions(jobs)

        def named(what: str, found: list[int]) -> None:
            if found:
                sample = ", ".join(str(i) for i in sorted(found)[:8])
                self.fail(f"{what}: {len(found)} job(s), e.g. {sample}")

        if lost:
            sample = ", ".join(
                f"{i} ({jobs[i]['status'] if i in jobs else 'missing'},"
                f" expected {'/'.join(sorted(expect.get(i, default)))})"
                for i in sorted(lost)[:6]
            )
            self.fail(f"lost (missing or not in an expected final status): {len(lost)}: {sample}")
        named("succeeded with no effect from the attempt of its result", phantom)
        named("left running after the leases expired and a rescue pass", left)
        named("an attempt number started twice", reused)
        named("recorded attempts below the highest attempt that started", undercounted)
        named("double effect (two attempts alive at once both had their effect)", doubles)
        if overlaps:
            shown = [
                f"job {a.job_id} attempt {a.attempt} pid {a.pid} start {a.start:.3f}"
                f" end {'-' if a.end is None else f'{a.end:.3f}'}"
                f" (counted until {self._end_of(a):.3f})"
                for job_id in sorted(overlaps)[:2]
                for a in settled.by_job[job_id]
            ]
            self.fail(
                f"two attempts of one job alive at once: {len(overlaps)} job(s): "
                + "; ".join(shown)
            )
        named("a final status followed by another status change", [r[0] for r in after_final])
        named("the last status event differs from the job's status", [r[0] for r in mismatched])
        named("a stale completion was accepted", stale)
        if settled.rescued:
            named("the final rescue pass still found expired leases", list(settled.rescued))
        self.stats = {
            "jobs": len(tracked),
            "lost": len(lost) + len(phantom),
            "double_effects": len(doubles),
            "left_running": len(left),
            "rescues": rescues,
            "overlaps": len(overlaps),
            "repeats": len(repeats),
        }

    def _stale_completions(self, jobs: dict[int, dict[str, Any]]) -> list[int]:
        """Complete jobs with old lease tokens; return the ids whose completion was
        accepted (it must be rejected) or that changed.
        """
        samples = [(i, t) for i, tokens in self.old_leases.items() for t in tokens if i in jobs]
        if not samples:  # nothing was seen running: any token of a final job is stale
            samples = [(i, f"stale-{uuid.uuid4().hex}") for i in sorted(jobs)[:3]]
        samples = samples[:20]
        if not samples:
            return []

        async def go(rt: bj.Runtime) -> list[int]:
            accepted = []
            for job_id, token in samples:
                outcome = Outcome(
                    job_id,
                    token,
                    bj.JobStatus.SUCCEEDED,
                    output='{"attempt": 0, "pad": "stale"}',
                    attempt=0,
                )
                if await rt.store.finish([outcome]) != [job_id]:
                    accepted.append(job_id)
            return accepted

        accepted = set(self.call(go))
        after = self._jobs()
        for job_id, _ in samples:
            if after[job_id]["status"] != jobs[job_id]["status"]:
                accepted.add(job_id)
            if after[job_id]["output"] != jobs[job_id]["output"]:
                accepted.add(job_id)
        self.notes.setdefault("stale tokens tried", len(samples))
        return sorted(accepted)

    # -- the row ------------------------------------------------------------------------------

    def finish(self) -> None:
        """Write the scenario's row, then fail the test if anything broke."""
        self._write_row(error=None)
        assert not self.failures, f"{self.name} ({self.store}):\n- " + "\n- ".join(self.failures)

    def _write_row(self, error: str | None) -> None:
        if self.row is not None:
            return
        stats = getattr(self, "stats", {})
        recover = None
        if self.faults and self.drained_at is not None:
            recover = max(0.0, self.drained_at - self.faults[-1][0])
        notes = dict(self.notes)
        if stats.get("overlaps"):
            notes["overlaps"] = stats["overlaps"]
        if stats.get("repeats"):
            notes["repeats"] = stats["repeats"]
        verdict = "ok"
        if error is not None:
            verdict = f"ERROR: {error}"
        elif self.failures:
            verdict = "FAIL: " + "; ".join(self.failures)
        self.row = {
            "scenario": self.name,
            "store": self.store,
            "mode": MODE,
            "jobs": stats.get("jobs"),
            "lost": stats.get("lost"),
            "double_effects": stats.get("double_effects"),
            "left_running": stats.get("left_running"),
            "rescues": stats.get("rescues"),
            "recover_s": None if recover is None else round(recover, 1),
            "notes": ", ".join(f"{k} {v}" for k, v in notes.items()),
            "verdict": verdict,
            "seconds": round(time.monotonic() - self.begun, 1),
        }
        path = results_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(json.dumps(self.row) + "\n")

    def close(self, error: str | None = None) -> None:
        """Stop every process; write an error row if the scenario did not finish."""
        for proc in self.procs:
            proc.close()
        if self.row is None:
            self._write_row(error=error or "the scenario stopped before its checks")
        self.db.close()

    def logs(self) -> str:
        return "\n".join(f"== {p.role} {p.pid}\n{p.text()}" for p in self.procs)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll `predicate` until it is true; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# -- helper processes -------------------------------------------------------------------------


async def _enqueue_batches(args: argparse.Namespace) -> None:
    """Enqueue `batches` batches of `size` `fx` jobs, one transaction each, tagged
    `batch-N`; after each commit, append N to the `ack` file.
    """
    item = {"seconds": args.seconds}
    async with bj.Runtime(args.url, jobs=fault_jobs.EVERY, load_entrypoints=False) as rt:
        for n in range(args.first, args.first + args.batches):
            await rt.enqueue_many(fault_jobs.fx, [item] * args.size, tags=[f"batch-{n}"])
            fd = os.open(args.ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{n} {time.monotonic():.6f}\n".encode())
            finally:
                os.close(fd)
            await anyio.sleep(args.pause)


async def _unique(args: argparse.Namespace) -> None:
    """`tasks` enqueuers, each with a runtime (and connections) of its own, enqueue one
    job with unique key `key` at wall-clock time `at`; each writes `id created`.
    """

    async def one() -> None:
        async with bj.Runtime(args.url, jobs=fault_jobs.EVERY, load_entrypoints=False) as rt:
            await anyio.sleep(max(0.0, args.at - time.time()))
            handle = await rt.enqueue(fault_jobs.fx, {"seconds": 0.01}, unique_key=args.key)
            fd = os.open(args.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{handle.id} {int(handle.created)}\n".encode())
            finally:
                os.close(fd)

    async with anyio.create_task_group() as tg:
        for _ in range(args.tasks):
            tg.start_soon(one)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.harness")
    commands = parser.add_subparsers(dest="command", required=True)
    enqueue = commands.add_parser("enqueue", help="enqueue batches, acknowledging each")
    enqueue.add_argument("url")
    enqueue.add_argument("--batches", type=int, required=True)
    enqueue.add_argument("--size", type=int, required=True)
    enqueue.add_argument("--first", type=int, default=0)
    enqueue.add_argument("--seconds", type=float, default=0.0)
    enqueue.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    enqueue.add_argument("--ack", required=True)
    unique = commands.add_parser("unique", help="enqueue with one unique key, all at once")
    unique.add_argument("url")
    unique.add_argument("key")
    unique.add_argument("--tasks", type=int, required=True)
    unique.add_argument("--at", type=float, required=True)
    unique.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    anyio.run(_enqueue_batches if args.command == "enqueue" else _unique, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
