"""Workers killed: with SIGKILL under load and at each commit point of an attempt, and
with SIGTERM, a second SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.faults import jobs
from tests.faults.harness import Scenario, read_ledger, scale, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(scale(150, 900))]


def test_sigkill_one_of_four_workers_every_2s(sc: Scenario) -> None:
    sc.name = "SIGKILL 1 of 4 workers every 2 s"
    n = scale(1_500, 20_000)
    ids = sc.enqueue(jobs.fx, [{"seconds": 0.15, "steps": 3}] * n)
    alive = [sc.start_worker("-c", "10", lease=2.0, wait=False) for _ in range(4)]
    for proc in alive:
        sc.wait_ready(proc)
    rng = random.Random(11)
    kills = 0
    next_kill = time.monotonic() + 2.0

    def tick() -> None:
        nonlocal kills, next_kill
        if time.monotonic() < next_kill:
            return
        victim = alive.pop(rng.randrange(len(alive)))
        sc.kill(victim)
        kills += 1
        alive.append(sc.start_worker("-c", "10", lease=2.0, wait=False))
        next_kill = time.monotonic() + 2.0

    sc.wait_drained(scale(120, 600), tick=tick, interval=0.2)
    sc.notes["kills"] = kills
    settled = sc.settle(ids)
    sc.check(kills >= 2, f"only {kills} kill(s) happened during the drain")
    retried = [i for i in ids if settled.jobs[i]["attempts"] > 1]
    sc.notes["jobs retried"] = len(retried)
    sc.finish()


# -- commit points --------------------------------------------------------------------------

WINDOWS = ["after claim", "after the handler returned", "during the result commit", "after commit"]


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.replace(" ", "-"))
def test_sigkill_at_a_commit_point(sc: Scenario, window: str) -> None:
    """How each window is reached:

    - after claim: one worker runs 2 jobs (`-c 2`) and holds 20 more in its buffer
      (`--prefetch 20`); the 2 running ones take 10 s on their first attempt. It is
      killed once both have started and their starts are recorded (1 s later): the
      buffered jobs were claimed (attempt counted) but never started.
    - after the handler returned: 8 handlers of 0.8 s run at once (lease 3 s); the
      test locks the job table against writes once every handler has started, waits
      until every handler wrote its effect and returned (its `end` line) and 0.3 s
      more, so that the worker's result write is blocked on the lock, checks that no
      result was committed, then kills the worker and releases the lock. Every effect
      happened; no result was committed.
    - during the result commit: as above, with outputs of 2 MB each (16 MB in the
      batch, `--max-payload 8MB`); the lock is released and the worker killed 15 ms
      later, while the big write it was blocked on runs (or just after it committed:
      either way, a result is there whole or not at all).

    PostgreSQL finishes a statement whose client died (it does not look at the socket
    while it waits for a lock or writes), so there the killed worker's connections are
    also terminated right after the kill, as a crash of its machine would end them.
    - after commit: the worker is killed as soon as 5 of its jobs are `succeeded` in
      the store, while others run.
    """
    sc.name = f"SIGKILL {window}"
    lease = 1.0
    if window == "after claim":
        ids = sc.enqueue(jobs.fx, [{"seconds": 0.05, "first_seconds": 10, "steps": 20}] * 2)
        ids += sc.enqueue(jobs.fx, [{"seconds": 0.05}] * 28)
        victim = sc.start_worker("-c", "2", "--prefetch", "20", lease=lease)
        wait_until(lambda: len(read_ledger(sc.ledger)) >= 2, 30, "two handlers to start")
        time.sleep(1.0)
        buffered = sc.count("status = 'running'") - 2
        sc.kill(victim, what="SIGKILL after claim")
        started = {job_id for job_id, _ in read_ledger(sc.ledger)}
    elif window == "after commit":
        ids = sc.enqueue(jobs.fx, [{"seconds": 0.3, "steps": 3}] * 40)
        victim = sc.start_worker("-c", "5", lease=lease)
        wait_until(lambda: sc.count("status = 'succeeded'") >= 5, 30, "5 commits")
        sc.kill(victim, what="SIGKILL after commit")
        committed = {r[0] for r in sc.db.query("SELECT id FROM jobs WHERE status = 'succeeded'")}
    else:
        big = window == "during the result commit"
        item = {"seconds": 0.8, "steps": 4, "result_bytes": 2 * 2**20 if big else 0}
        ids = sc.enqueue(jobs.fx, [item] * 8)
        lease = 3.0  # the lock also holds the renewals back: no fencing before the kill
        victim = sc.start_worker("-c", "8", "--max-payload", str(8 * 2**20), lease=lease)
        wait_until(lambda: len(read_ledger(sc.ledger)) >= 8, 30, "8 handlers to start")
        hold = sc.db.hold()
        try:
            wait_until(
                lambda: sum(a.end is not None for a in read_ledger(sc.ledger).values()) >= 8,
                30,
                "every handler to return",
            )
            time.sleep(0.3)
            early = sc.count("status = 'succeeded'")
            sc.check(early == 0, f"the window was missed: {early} result(s) were committed")
            if big:
                hold.release()
                time.sleep(0.015)
            sc.kill(victim, what=f"SIGKILL {window}")
            if sc.store == "postgresql":  # its statements die with it, as in a crash
                terminate_backends(sc)
        finally:
            hold.release()
    sc.start_worker("-c", "8", "--max-payload", str(8 * 2**20), lease=lease, wait=False)
    sc.wait_drained(60)
    settled = sc.settle(ids)
    final = settled.jobs
    if window == "after claim":
        never_started = [i for i in ids if i not in started]
        sc.notes["buffered"] = buffered
        sc.check(buffered > 0, "no claimed job waited in the buffer")
        for job_id in ids:
            job = final[job_id]
            if job_id in started:  # its worker died while running it: a crash
                sc.check(job["crashes"] == 1, f"job {job_id}: crashes {job['crashes']} != 1")
            elif job["crashes"] or job["max_attempts"] - job["attempts"] != 4:
                sc.fail(f"job {job_id} waited in the buffer, yet lost an attempt: {job}")
        sc.check(len(never_started) >= buffered, "buffered jobs started before the kill")
    elif window == "after commit":
        sc.notes["committed before the kill"] = len(committed)
        for job_id in committed:
            starts = [a.attempt for a in settled.by_job.get(job_id, [])]
            sc.check(starts == [1], f"job {job_id} committed, yet ran again: attempts {starts}")
    else:
        effects = sum(a.effects for a in settled.attempts.values() if a.attempt == 1)
        sc.check(effects == 8, f"only {effects} first attempts had their effect")
        if window == "during the result commit":
            for job_id in ids:
                out = final[job_id]["output"]
                if final[job_id]["status"] == "succeeded":
                    sc.check(
                        isinstance(out, dict) and len(out.get("pad", "")) == 2 * 2**20,
                        f"job {job_id}: a partial output was committed",
                    )
        first_try = sum(final[i]["attempts"] == 1 for i in ids)
        sc.notes["committed by the killed worker"] = first_try
    sc.finish()


def terminate_backends(sc: Scenario) -> int:
    """Terminate the scenario's worker connections (PostgreSQL); how many."""
    rows = sc.db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE 'brains_jobs%' AND application_name LIKE ?",
        f"%{sc.db.schema}",
    )
    return len(rows)


# -- SIGTERM, a second SIGTERM, then SIGKILL ------------------------------------------------


def test_sigterm_then_sigterm_then_sigkill(sc: Scenario) -> None:
    """A worker runs cancellable handlers (30 s on their first attempt), handlers that
    ignore cancellation (30 s, shielded) and short ones, with more jobs in its buffer.
    The first SIGTERM stops claiming and gives the buffer back; the second cancels the
    running handlers and gives their jobs back, the attempt not counted; the process
    cannot exit while the shielded handlers run, so it gets SIGKILL 3 s later. A second
    worker drains what is left.
    """
    sc.name = "SIGTERM, second SIGTERM, SIGKILL"
    long = sc.enqueue(jobs.fx, [{"seconds": 0.05, "first_seconds": 30, "steps": 60}] * 3)
    stubborn = sc.enqueue(jobs.fx, [{"seconds": 0.05, "first_seconds": 30, "shielded": True}] * 2)
    short = sc.enqueue(jobs.fx, [{"seconds": 0.5, "steps": 5}] * 20)
    proc = sc.start_worker("-c", "8", "--prefetch", "10", lease=1.0)
    wait_until(
        lambda: {i for i, _ in read_ledger(sc.ledger)} >= set(long + stubborn),
        30,
        "the long handlers to start",
    )
    time.sleep(0.6)  # their starts are recorded
    sc.kill(proc, signal.SIGTERM, "first SIGTERM")
    time.sleep(1.0)
    sc.kill(proc, signal.SIGTERM, "second SIGTERM")
    code = proc.wait(3.0)
    sc.notes["exit after second SIGTERM"] = "none (SIGKILL)" if code is None else code
    if code is None:
        sc.kill(proc, what="SIGKILL")
    after_kill = {
        r[0]: r[1:] for r in sc.db.query("SELECT id, status, attempts, max_attempts FROM jobs")
    }
    for job_id in long:
        status, attempts, max_attempts = after_kill[job_id]
        sc.check(
            status == "queued" and max_attempts - attempts == jobs.fx.max_attempts,
            f"job {job_id} (cancelled by the second SIGTERM) was not given back:"
            f" {status} {attempts}/{max_attempts}",
        )
    sc.start_worker("-c", "8", lease=1.0, wait=False)
    sc.wait_drained(60)
    settled = sc.settle(long + stubborn + short)
    for job_id in stubborn:  # killed while running: a crash, counted as the attempt
        job = settled.jobs[job_id]
        sc.check(job["crashes"] == 1, f"stubborn job {job_id}: crashes {job['crashes']} != 1")
    sc.finish()
