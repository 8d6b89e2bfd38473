"""People acting on jobs while workers run them: cancels racing completions, and retries
and cancels from the command line during a drain.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time

import pytest

import brains_jobs as bj
from tests.faults import jobs
from tests.faults.harness import ROOT, Scenario, read_ledger, scale, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(scale(150, 900))]

S = bj.JobStatus


def test_cancel_racing_completion(sc: Scenario) -> None:
    """Thousands of short jobs drain on two workers with a 1 s lease while a third of
    them are cancelled: over and over, the test reads a few jobs that are running right
    now and cancels them (their handlers are about to return, or just did), and a few
    that are queued.

    - `cancel` said CANCELLED (the job was queued): it ends `cancelled` and no attempt
      starts after that answer;
    - `cancel` said RUNNING (asked its worker to stop it): it ends `cancelled`, or
      `succeeded` if its handler returned first;
    - `cancel` raised `InvalidJobState` (already final): it ends `succeeded`;
    - a cancelled job has no effect (unless an attempt lost its lease after its effect:
      its result was rejected as late, and the job went back to the queue); every job
      not cancelled succeeds.
    """
    sc.name = "cancel racing completion"
    n = scale(1_500, 20_000)
    rng = random.Random(3)
    inputs = [{"seconds": rng.choice([0.0, 0.05, 0.1, 0.2]), "steps": 2} for _ in range(n)]
    ids = sc.enqueue(jobs.fx, inputs)
    answers: dict[int, tuple[str, float]] = {}
    for _ in range(2):
        sc.start_worker("-c", "10", "--prefetch", "5", lease=1.0, wait=False)
    wait_until(lambda: len(read_ledger(sc.ledger)) >= 20, 60, "the drain to get going")

    async def cancel(rt: bj.Runtime, job_id: int) -> None:
        try:
            status = await rt.cancel(job_id, actor="race")
            answers[job_id] = (status.value, time.monotonic())
        except bj.InvalidJobState:
            answers[job_id] = ("final", time.monotonic())

    async def cancel_all(rt: bj.Runtime) -> None:
        while len(answers) < n // 3:
            running = sc.db.query(
                "SELECT id FROM jobs WHERE status = 'running' ORDER BY random() LIMIT 6"
            )
            queued = sc.db.query(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY random() LIMIT 2"
            )
            if not running and not queued:
                return
            for (job_id,) in running + queued:
                if job_id not in answers:
                    await cancel(rt, int(job_id))
            sc.sample_leases()

    sc.fault("cancels")
    sc.call(cancel_all)
    sc.fault("last cancel")
    sc.wait_drained(scale(60, 600))
    tally: dict[str, int] = {}
    for answer, _ in answers.values():
        tally[answer] = tally.get(answer, 0) + 1
    sc.notes.update({f"answered {k}": v for k, v in sorted(tally.items())})
    expect = {}
    for job_id, (answer, _) in answers.items():
        expect[job_id] = {
            "cancelled": {"cancelled"},
            "running": {"cancelled", "succeeded"},
            "final": {"succeeded"},
        }[answer]
    settled = sc.settle(ids, expect=expect)
    # An attempt whose lease expired after its effect (its result then came too late and
    # was rejected) leaves an effect behind whatever becomes of the job: at least once.
    lost_lease = {
        int(r[0])
        for r in sc.db.query(
            "SELECT job_id FROM job_events WHERE kind = 'log' AND message LIKE 'late %rejected%'"
        )
    }
    excused = 0
    for job_id, (answer, at) in answers.items():
        attempts = settled.by_job.get(job_id, [])
        if answer == "cancelled":
            late = [a.attempt for a in attempts if a.start > at]
            sc.check(not late, f"job {job_id} started after its cancel returned: {late}")
        if settled.jobs[job_id]["status"] == "cancelled":
            effects = [a.attempt for a in attempts if a.effect is not None]
            if effects and job_id in lost_lease:
                excused += 1
                continue
            sc.check(not effects, f"cancelled job {job_id} had its effect: {effects}")
    if excused:
        sc.notes["cancelled after a lease lost past its effect"] = excused
    ended = sum(settled.jobs[i]["status"] == "cancelled" for i in answers)
    sc.notes["ended cancelled"] = ended
    sc.check(tally.get("running", 0) > 0, "no cancel reached a running job")
    sc.finish()


@pytest.mark.postgres
def test_retry_and_cancel_from_the_cli_during_a_drain(pg: Scenario) -> None:
    """Eight workers drain jobs; some fail (their one attempt raises). While they drain,
    `brains-jobs retry ID` queues failed jobs again (they succeed on their second
    attempt) and `brains-jobs cancel ID` cancels queued and running ones. Every command
    answers, and every job ends as its command said.
    """
    pg.name = "retry/cancel from the CLI while 8 workers drain"
    n = scale(120, 3_000)
    failing = pg.enqueue(jobs.fx, [{"seconds": 0.01, "fail_attempts": 1}] * 20, max_attempts=1)
    long = pg.enqueue(jobs.fx, [{"seconds": 10, "steps": 100}] * 8)
    ids = long + pg.enqueue(jobs.fx, [{"seconds": 0.8, "steps": 4}] * n)
    procs = [pg.start_worker("-c", "2", "--prefetch", "1", lease=2.0, wait=False) for _ in range(8)]
    for proc in procs:
        pg.wait_ready(proc)
    wait_until(lambda: pg.count("status = 'failed'") >= 8, 60, "failed jobs to retry")
    rng = random.Random(9)
    failed = [r[0] for r in pg.db.query("SELECT id FROM jobs WHERE status = 'failed'")]
    to_retry = rng.sample(failed, min(len(failed), scale(4, 20)))
    # Cancel the last queued jobs (still queued when the command runs) and running ones.
    half = scale(2, 10)
    normal = set(ids)
    queued = [r[0] for r in pg.db.query("SELECT id FROM jobs WHERE status = 'queued'")]
    running_now = [r[0] for r in pg.db.query("SELECT id FROM jobs WHERE status = 'running'")]
    running_long = [i for i in running_now if i in long]
    to_cancel = rng.sample(running_long, min(len(running_long), half))
    to_cancel += sorted((i for i in queued if i in normal), reverse=True)[:half]
    commands = [("cancel", i) for i in to_cancel] + [("retry", i) for i in to_retry]
    pg.fault("CLI commands")
    results: dict[tuple[str, int], subprocess.CompletedProcess[str]] = {}
    running: list[tuple[tuple[str, int], subprocess.Popen[str]]] = []
    for command in commands:
        while len(running) >= 3:
            key, proc = running.pop(0)
            out, err = proc.communicate(timeout=60)
            results[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        proc = subprocess.Popen(
            [sys.executable, "-m", "brains_jobs", command[0], str(command[1]), "--db", pg.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=pg.env(),
            cwd=ROOT,
        )
        running.append((command, proc))
    for key, proc in running:
        out, err = proc.communicate(timeout=60)
        results[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    pg.sample_leases(force=True)
    pg.wait_drained(scale(90, 600))
    expect: dict[int, set[str]] = {i: {"failed"} for i in failing}
    tally: dict[str, int] = {}
    for (action, job_id), done in results.items():
        said = done.stdout.strip() or done.stderr.strip()
        if action == "retry":
            ok = done.returncode == 0 and "queued again" in said
            pg.check(ok, f"retry {job_id}: exit {done.returncode}: {said}")
            expect[job_id] = {"succeeded"}
            key = "retried"
        elif done.returncode == 0 and said == "cancelled":
            expect[job_id] = {"cancelled"}
            key = "cancelled queued"
        elif done.returncode == 0 and said == "cancellation requested":
            expect[job_id] = {"cancelled", "succeeded"}
            key = "cancel requested"
        elif match := re.search(r"is (\w+) and cannot be cancelled", said):
            expect[job_id] = {match.group(1)}  # it was final already
            key = "already final"
        else:
            pg.fail(f"cancel {job_id}: exit {done.returncode}: {said}")
            continue
        tally[key] = tally.get(key, 0) + 1
    pg.notes.update(tally)
    settled = pg.settle(ids + failing, expect=expect)
    for job_id in to_retry:
        attempts = sorted(a.attempt for a in settled.by_job.get(job_id, []))
        pg.check(attempts == [1, 2], f"retried job {job_id} ran attempts {attempts}")
    pg.check(len(read_ledger(pg.ledger)) > 0, "nothing ran")
    pg.finish()
