"""The database misbehaves: PostgreSQL restarted and its connections terminated during
a drain, a worker cut off from it, SQLite killed mid-write, rows written behind the
library's back, and many enqueuers racing for one unique key.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import time
from urllib.parse import urlsplit

import pytest

import brains_jobs as bj
from tests.conftest import PG_DSN
from tests.faults import jobs
from tests.faults.harness import Scenario, median, read_ledger, scale, wait_until
from tests.faults.network import BlackHoleProxy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(scale(150, 900))]


def _local_cluster() -> str:
    """The version of the local cluster that pg_ctlcluster manages."""
    if not os.path.isdir("/etc/postgresql"):
        message = "needs a local PostgreSQL cluster managed by pg_ctlcluster"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true)")
        pytest.skip(message)
    return sorted(os.listdir("/etc/postgresql"))[0]


def _restart_postgres(version: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=120,
        capture_output=True,
    )


@pytest.mark.postgres
def test_postgres_restarted_and_connections_terminated_during_a_drain(pg: Scenario) -> None:
    """While two workers drain, the server is restarted (`pg_ctlcluster ... restart -m
    fast`) several times, and between restarts every connection of the workers is
    terminated (`pg_terminate_backend` on `application_name LIKE 'brains_jobs%'`). The
    workers must live through it and the drain complete.
    """
    version = _local_cluster()
    pg.name = "PostgreSQL restarted, worker connections terminated"
    ids = pg.enqueue(jobs.fx, [{"seconds": 0.05}] * scale(3_000, 30_000))
    procs = [pg.start_worker("-c", "10", lease=3.0, wait=False) for _ in range(2)]
    for proc in procs:
        pg.wait_ready(proc)
    wait_until(lambda: len(read_ledger(pg.ledger)) > 100, 60, "the drain to get going")
    plan = scale(["terminate", "restart", "terminate", "restart"], ["terminate", "restart"] * 6)
    done: dict[str, int] = {"restart": 0, "terminate": 0}
    terminated = 0
    for fault in plan:
        if pg.pending() == 0:
            break
        pg.sample_leases(force=True)
        if fault == "restart":
            _restart_postgres(version)
            pg.fault("restart")
            time.sleep(1.5)
        else:
            killed = pg.db.query(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE 'brains_jobs%' AND application_name LIKE ?",
                f"%{pg.db.schema}",
            )
            pg.fault(f"terminated {len(killed)} connections")
            terminated += len(killed)
            time.sleep(1.0)
        done[fault] += 1
    pg.notes.update(
        {"restarts": done["restart"], "terminations": done["terminate"], "killed": terminated}
    )
    pg.wait_drained(scale(120, 600), interval=0.5)
    dead = [p.pid for p in procs if not p.alive]
    pg.check(not dead, f"worker(s) {dead} died with the database")
    pg.check(
        done["restart"] >= 2 and done["terminate"] >= 2,
        f"too few faults happened during the drain: {done}",
    )
    pg.settle(ids)
    pg.finish()


@pytest.mark.postgres
def test_a_worker_cut_off_longer_than_its_lease(pg: Scenario) -> None:
    """Worker A reaches PostgreSQL through a proxy that then turns into a black hole
    (nothing forwarded, nothing closed) for 8 s while A's handlers run: A cannot renew
    its leases (3 s). A must cancel its handlers itself (self-fencing) before worker B,
    connected directly, takes the jobs over once their leases expired: no attempt of A
    may still be alive when B's attempt starts.
    """
    pg.name = "worker cut off longer than its lease"
    lease = 3.0
    # A's attempts would record their effect 6 s after they started (5 s after the
    # cut); B may take the jobs over 2 to 3 s after the cut.
    ids = pg.enqueue(jobs.fx, [{"seconds": 0.2, "first_seconds": 6, "steps": 60}] * 2)
    server = urlsplit(PG_DSN)
    port = server.port or 5432
    proxy = BlackHoleProxy((server.hostname or "127.0.0.1", port))
    proxy.start()
    try:
        url = pg.url.replace(f":{port}/", f":{proxy.port}/", 1)
        assert url != pg.url, f"no port to replace in {pg.url}"
        a = pg.start_worker("-c", "2", url=url, lease=lease)
        wait_until(lambda: len(read_ledger(pg.ledger)) >= 2, 30, "A's handlers to start")
        time.sleep(1.0)  # their starts are recorded
        pg.sample_leases(force=True)
        proxy.blackhole()
        pg.fault("network black hole")
        cut_at = time.monotonic()
        b = pg.start_worker("-c", "2", lease=lease)
        pg.wait_drained(60)
        time.sleep(max(0.0, cut_at + 8.0 - time.monotonic()))  # the cut lasts 8 s
        attempts = read_ledger(pg.ledger)
        a_ends = [x.end for x in attempts.values() if x.pid == a.pid and x.end is not None]
        b_starts = [x.start for x in attempts.values() if x.pid == b.pid]
        if a_ends:
            pg.notes["A stopped its handlers after (s)"] = round(max(a_ends) - cut_at, 1)
        if b_starts:
            pg.notes["B took over after (s)"] = round(min(b_starts) - cut_at, 1)
        pg.check(
            len(a_ends) == 2 and b_starts and max(a_ends) < min(b_starts),
            "A's handlers were still running when B started the jobs again",
        )
        proxy.heal()
        time.sleep(1.0)
        pg.settle(ids)
    finally:
        proxy.close()
    pg.finish()


@pytest.mark.postgres
@pytest.mark.timeout(scale(150, 3600))
def test_flood_of_enqueues_while_draining(pg: Scenario) -> None:
    """An enqueuer process inserts jobs in batches (1,000,000 in the full run) as fast
    as it can while two workers drain. Every half second the test measures a claim
    (10 jobs, given back at once) and the queue's depth, counts the jobs done and reads
    the workers' resident memory. Claim time and drain rate must stay flat as the queue
    deepens, and memory bounded.
    """
    pg.name = "enqueue flood while draining"
    total = scale(30_000, 1_000_000)
    size = 2_000
    pg.enqueue(jobs.fx, [])  # creates the schema
    ack = pg.tmp_path / "ack.txt"
    # Jobs of 2 ms on 2 x 8 lanes drain at most 8,000 a second: the enqueuer outruns
    # them, so that the queue gets deep.
    procs = [pg.start_worker("-c", "8", lease=5.0, wait=False) for _ in range(2)]
    for proc in procs:
        pg.wait_ready(proc)
    pg.start_helper(
        "enqueue",
        pg.url,
        "--batches",
        str(total // size),
        "--size",
        str(size),
        "--seconds",
        "0.002",
        "--ack",
        str(ack),
        name="enqueuer",
    )
    samples: list[tuple[float, int, float, int, int]] = []  # t, depth, claim ms, done, rss

    async def probe(rt: bj.Runtime) -> float:
        began = time.perf_counter()
        claimed = await rt.store.claim(
            worker_id="probe", queues=None, types=["fx"], limit=10, lease=30
        )
        took = (time.perf_counter() - began) * 1000
        if claimed:
            await rt.store.release([(c.id, c.lease_token) for c in claimed], "probe")
        return took

    def tick() -> None:
        depth = pg.count("status = 'queued'")
        claim_ms = pg.call(probe)
        done = pg.count("status = 'succeeded'")
        rss = max((p.rss() or 0) for p in procs)
        samples.append((time.monotonic(), depth, claim_ms, done, rss))

    deadline = time.monotonic() + scale(240, 3000)
    while not (ack.exists() and len(ack.read_text().splitlines()) == total // size):
        assert time.monotonic() < deadline, "the enqueuer did not finish"
        tick()
        time.sleep(0.5)
    pg.fault("the last batch was enqueued")
    pg.wait_drained(scale(240, 3000), tick=tick, interval=0.5)
    # Compare the shallow part of the run with the deep part.
    peak = max(s[1] for s in samples)
    rates = []
    for before, after in itertools.pairwise(samples):
        rate = (after[3] - before[3]) / max(after[0] - before[0], 1e-6)
        rates.append((after[1], rate, after[2]))
    shallow = [r for r in rates if r[0] <= peak / 3]
    deep = [r for r in rates if r[0] >= peak * 2 / 3]
    claim_shallow = median([r[2] for r in shallow])
    claim_deep = median([r[2] for r in deep])
    rate_shallow = median([r[1] for r in shallow])
    rate_deep = median([r[1] for r in deep])
    rss = [s[4] for s in samples]
    third = max(1, len(rss) // 3)
    pg.notes.update(
        {
            "peak depth": peak,
            "claim ms shallow/deep": f"{claim_shallow:.1f}/{claim_deep:.1f}",
            "drain jobs/s shallow/deep": f"{rate_shallow:.0f}/{rate_deep:.0f}",
            "worker RSS MB max": round(max(rss) / 2**20),
        }
    )
    pg.check(peak >= total // 4, f"the queue never got deep (peak {peak})")
    pg.check(
        claim_deep <= 3 * claim_shallow + 5,
        f"claims slowed down as the queue deepened: {claim_shallow:.1f} -> {claim_deep:.1f} ms",
    )
    pg.check(
        rate_deep >= rate_shallow / 2,
        f"the drain slowed down as the queue deepened: {rate_shallow:.0f} -> {rate_deep:.0f}/s",
    )
    pg.check(
        max(rss[-third:]) <= 1.5 * max(rss[:third]) + 50 * 2**20 and max(rss) < 600 * 2**20,
        f"worker memory grew: {max(rss[:third]) >> 20} -> {max(rss[-third:]) >> 20} MB",
    )
    pg.settle()
    pg.finish()


# -- SQLite killed mid-write --------------------------------------------------------------


@pytest.mark.timeout(scale(150, 600))
def test_sqlite_killed_during_writes_stays_intact(lite: Scenario) -> None:
    """Four workers and an enqueuer process write to one SQLite file. While the
    enqueuer runs, one of them is killed with SIGKILL every second and restarted (5
    workers and the enqueuer twice; 30 and 6 in the full run; the enqueuer once it has
    committed a few batches, so mid-write). Afterwards `PRAGMA integrity_check` says
    `ok`, every batch an enqueuer saw committed is there in full, no batch is there in
    part, and every job ran.
    """
    lite.name = "SQLite: SIGKILL during writes"
    size = 50
    batches = scale(40, 400)
    lite.enqueue(jobs.fx, [])  # creates the database
    ack = lite.tmp_path / "ack.txt"
    procs = [lite.start_worker("-c", "5", lease=2.0, wait=False) for _ in range(4)]

    def enqueuer(first: int, count: int) -> None:
        lite.start_helper(
            "enqueue",
            lite.url,
            "--batches",
            str(count),
            "--size",
            str(size),
            "--first",
            str(first),
            "--seconds",
            "0.01",
            "--pause",
            "0.05",
            "--ack",
            str(ack),
            name="enqueuer",
        )

    def acked() -> int:
        return len(ack.read_text().splitlines()) if ack.exists() else 0

    rng = random.Random(5)
    kills = {"worker": 0, "enqueuer": 0}
    max_kills = {"worker": scale(5, 30), "enqueuer": scale(2, 6)}
    min_worker_kills = 3
    next_kill = time.monotonic() + 1.5
    runs = 0  # enqueuers started; each takes batch numbers of its own
    acked_before = 0  # acknowledgements when the running enqueuer started

    def enqueuing() -> bool:
        """Keep an enqueuer running until every batch is in; False once they are."""
        nonlocal runs, acked_before, batches
        if [p for p in lite.procs if p.role == "enqueuer" and p.alive]:
            return True
        done = acked()
        if done >= batches:
            if kills["worker"] >= min_worker_kills:
                return False
            # The batches went in before enough workers were killed (a fast machine):
            # more of them keep the writes going while the kills catch up.
            batches += 10
        acked_before = done
        enqueuer(1000 * runs, batches - done)
        runs += 1
        return True

    def tick() -> None:
        nonlocal next_kill
        helpers = [p for p in lite.procs if p.role == "enqueuer" and p.alive]
        if time.monotonic() < next_kill:
            return
        next_kill = time.monotonic() + 1.0
        # An enqueuer is killed once it has committed a few batches: mid-write.
        if (
            helpers
            and kills["enqueuer"] < max_kills["enqueuer"]
            and acked() - acked_before >= 3
            and rng.random() < 0.5
        ):
            lite.kill(helpers[0], what="SIGKILL enqueuer")
            kills["enqueuer"] += 1
            return
        ready = [p for p in procs if lite.is_ready(p)]
        if not ready or kills["worker"] >= max_kills["worker"]:
            return
        victim = rng.choice(ready)
        procs.remove(victim)
        lite.kill(victim, what="SIGKILL worker")
        kills["worker"] += 1
        procs.append(lite.start_worker("-c", "5", lease=2.0, wait=False))

    deadline = time.monotonic() + scale(90, 600)
    while enqueuing():
        assert time.monotonic() < deadline, "the enqueuers did not finish"
        tick()
        time.sleep(0.1)
    lite.wait_drained(scale(60, 300))
    lite.notes.update({f"{k}s killed": v for k, v in kills.items()})
    settled = lite.settle()
    integrity = lite.db.value("PRAGMA integrity_check")
    lite.check(integrity == "ok", f"integrity_check: {integrity}")
    lines = ack.read_text().splitlines() if ack.exists() else []
    committed = {int(line.split()[0]) for line in lines}
    lite.check(committed, "the enqueuer acknowledged no batch:\n" + lite.logs()[-3000:])
    counts: dict[str, int] = {}
    for (tags,) in lite.db.query("SELECT tags FROM jobs"):
        for tag in json.loads(tags):
            counts[tag] = counts.get(tag, 0) + 1
    partial = {t: n for t, n in counts.items() if n != size}
    missing = [n for n in committed if counts.get(f"batch-{n}") != size]
    lite.check(not partial, f"batches in part: {partial}")
    lite.check(not missing, f"acknowledged batches missing: {missing}")
    lite.notes["batches"] = len(counts)
    lite.check(kills["worker"] >= min_worker_kills, f"only {kills['worker']} worker kill(s)")
    lite.check(len(settled.jobs) == len(counts) * size, "jobs without a batch")
    lite.finish()


# -- rows written behind the library's back -----------------------------------------------

SQLITE_BAD_INPUTS = [
    '{"seconds": ',  # cut short
    "not json at all",
    "",
    '{"seconds": "soon"}',  # JSON, but not the input model
    '"a string"',
    "[" * 100_000 + "]" * 100_000,  # nested deeper than any parser goes
]
PG_BAD_INPUTS = [  # the json column takes only JSON; so: JSON the model refuses
    '{"seconds": "soon"}',
    '"a string"',
    "null",
    "[]",
    '{"seconds": -1}',
    '{"steps": 0}',
]


def test_malformed_rows_fail_at_once(sc: Scenario) -> None:
    """Queued jobs whose input was overwritten by raw SQL with text that is not JSON (on
    SQLite; PostgreSQL's json column refuses it) or JSON that the input model refuses:
    each fails at once, as permanently invalid (one attempt, `InvalidJobInput`), while
    the other jobs succeed; `get` and `list` work on every job.
    """
    sc.name = "malformed rows (invalid JSON input)"
    bad_inputs = SQLITE_BAD_INPUTS if sc.store == "sqlite" else PG_BAD_INPUTS
    bad = sc.enqueue(jobs.fx, [{"seconds": 0.01}] * len(bad_inputs), delay=3600)
    good = sc.enqueue(jobs.fx, [{"seconds": 0.01}] * 30)
    for job_id, text in zip(bad, bad_inputs, strict=True):
        if sc.store == "sqlite":
            sc.db.query(
                "UPDATE jobs SET input = ?, run_at = ? WHERE id = ?", text, time.time(), job_id
            )
        else:
            sc.db.query(
                "UPDATE jobs SET input = ?::json, run_at = now() WHERE id = ?", text, job_id
            )
    sc.fault("rows overwritten")
    sc.start_worker("-c", "4")
    sc.wait_drained(30)
    expect = {i: {"failed"} for i in bad}
    settled = sc.settle(bad + good, expect=expect)

    async def inspect(rt: bj.Runtime) -> list[str]:
        problems = []
        for job_id in bad + good:
            try:
                job = await rt.get(job_id)
            except Exception as exc:
                problems.append(f"get({job_id}) raised {exc!r}")
                continue
            if job_id in bad:
                types = [e.type for e in job.errors]
                if job.attempts != 1 or types != ["InvalidJobInput"]:
                    problems.append(f"job {job_id}: {job.attempts} attempt(s), errors {types}")
        try:
            listed = {j.id for j in (await rt.list(limit=1000)).jobs}
            if not set(bad + good) <= listed:
                problems.append(f"list() misses {sorted(set(bad + good) - listed)}")
            failed = {j.id for j in (await rt.list(status="failed", limit=1000)).jobs}
            if failed != set(bad):
                problems.append(f"list(status=failed) is {sorted(failed)}")
        except Exception as exc:
            problems.append(f"list() raised {exc!r}")
        return problems

    for problem in sc.call(inspect):
        sc.fail(problem)
    sc.notes["malformed"] = len(bad)
    sc.check(all(settled.jobs[i]["attempts"] == 1 for i in bad), "a malformed job was retried")
    sc.finish()


# -- one unique key, many enqueuers ---------------------------------------------------------


def test_fifty_concurrent_enqueuers_one_unique_key(sc: Scenario) -> None:
    """50 enqueuers (5 processes of 10, each with a runtime and connections of its own)
    enqueue one job with the same unique key at the same instant, before any worker
    runs: exactly one job exists, every enqueuer got its id, exactly one created it.
    """
    sc.name = "50 concurrent enqueuers, one unique key"
    sc.enqueue(jobs.fx, [])  # creates the schema
    out = sc.tmp_path / "unique.txt"
    at = time.time() + 5.0
    helpers = [
        sc.start_helper(
            "unique",
            sc.url,
            "the-key",
            "--tasks",
            "10",
            "--at",
            str(at),
            "--out",
            str(out),
            name="enqueuer",
        )
        for _ in range(5)
    ]
    for proc in helpers:
        code = proc.wait(60)
        sc.check(code == 0, f"an enqueuer exited with {code}: {proc.text()[-2000:]}")
    sc.fault("50 enqueues")
    lines = [line.split() for line in out.read_text().splitlines()] if out.exists() else []
    ids = {int(i) for i, _ in lines}
    created = sum(int(c) for _, c in lines)
    sc.notes["answers"] = len(lines)
    sc.check(len(lines) == 50, f"{len(lines)} of 50 enqueuers answered")
    sc.check(len(ids) == 1, f"the enqueuers got different jobs: {sorted(ids)}")
    sc.check(created == 1, f"{created} enqueuers say they created the job")
    rows = sc.db.query("SELECT id FROM jobs WHERE unique_key = ?", "the-key")
    sc.check(len(rows) == 1, f"{len(rows)} jobs hold the key")
    sc.start_worker("-c", "2")  # only now: a finished job may let its key go
    sc.wait_drained(30)
    sc.settle(sorted(ids))
    sc.finish()
