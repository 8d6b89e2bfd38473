"""Handlers that break things: poison pills that kill their worker, handlers that block
the loop, ignore cancellation, run in threads or raise what should not be raised, text
no database can hold, payloads too big, a flood of progress reports, and job types
that only some workers know.
"""

from __future__ import annotations

import time

import pytest

import brains_jobs as bj
from tests.faults import jobs
from tests.faults.harness import Scenario, read_ledger, scale, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(scale(150, 900))]

S = bj.JobStatus


def test_poison_pills_among_many_jobs(sc: Scenario) -> None:
    """Pills that kill their worker (`os._exit`, a segmentation fault, a memory blow-up
    under an address-space cap) among many ordinary jobs, on three workers restarted
    whenever one dies: every ordinary job succeeds, every pill ends `failed` as
    `WorkerCrashed` after `max_crashes` crashes.
    """
    sc.name = "poison pills (exit, segfault, memory)"
    normal = sc.enqueue(jobs.fx, [{"seconds": 0.05}] * scale(100, 3_000))
    pills = sc.enqueue(jobs.pill, [{"kind": k} for k in ("exit", "segv", "oom")])
    procs = [sc.start_worker("-c", "4", wait=False) for _ in range(3)]
    restarts = 0

    def tick() -> None:
        nonlocal restarts
        for i, proc in enumerate(procs):
            if not proc.alive:
                sc.fault(f"worker {proc.pid} died ({proc.returncode})")
                restarts += 1
                procs[i] = sc.start_worker("-c", "4", wait=False)

    sc.wait_drained(scale(120, 600), tick=tick)
    sc.notes["worker deaths"] = restarts
    expect = {i: {"failed"} for i in pills}
    sc.settle(normal + pills, expect=expect)

    async def records(rt: bj.Runtime) -> list[bj.Job]:
        return [await rt.get(i) for i in pills]

    for job in sc.call(records):
        last = job.last_error.type if job.last_error else None
        sc.check(
            job.status is S.FAILED and last == "WorkerCrashed",
            f"pill {job.id} ({job.input['kind']}): {job.status.value},"
            f" last error {last}, crashes {job.crashes}",
        )
    sc.check(restarts >= len(pills) * jobs.pill.max_crashes, f"only {restarts} worker deaths")
    sc.finish()


MISBEHAVING = [
    (jobs.bad_block, {"seconds": 1.5}, "TimeoutError"),
    (jobs.bad_ignore, {"seconds": 2.0}, "TimeoutError"),
    (jobs.bad_thread, {"seconds": 1.5}, "TimeoutError"),
    (jobs.bad_to_thread, {"seconds": 1.5}, "TimeoutError"),
    (jobs.bad_raise, {"what": "cancelled"}, "CancelledError"),
    (jobs.bad_raise, {"what": "systemexit"}, "SystemExit"),
    (jobs.bad_raise, {"what": "keyboardinterrupt"}, "KeyboardInterrupt"),
]


def test_handlers_that_misbehave(sc: Scenario) -> None:
    """Handlers that block the event loop (`time.sleep` in `async def`), ignore their
    cancellation, run in threads (a plain `def`, and `anyio.to_thread.run_sync`), or
    raise `CancelledError`, `SystemExit` or `KeyboardInterrupt` themselves, among
    ordinary jobs, on one worker (`-c 8`): the worker lives through all of it, every
    such attempt is a failed attempt of its job (2 attempts, 2 errors, then `failed`),
    and every ordinary job succeeds.
    """
    sc.name = "handlers that block, ignore cancellation, use threads, raise"
    bad: dict[int, str] = {}
    for definition, inp, error in MISBEHAVING:
        (job_id,) = sc.enqueue(definition, [inp])
        bad[job_id] = error
    normal = sc.enqueue(jobs.fx, [{"seconds": 0.05}] * 40)
    sc.fault("misbehaving handlers enqueued")
    proc = sc.start_worker("-c", "8", lease=5.0)
    sc.wait_drained(90)
    sc.check(proc.alive, f"the worker died: {proc.returncode}\n{proc.text()[-3000:]}")
    expect = {i: {"failed"} for i in bad}
    sc.settle(list(bad) + normal, expect=expect)

    async def records(rt: bj.Runtime) -> list[bj.Job]:
        return [await rt.get(i) for i in bad]

    for job in sc.call(records):
        types = [e.type for e in job.errors]
        want = bad[job.id]
        sc.check(
            job.attempts == 2 and types == [want, want],
            f"job {job.id} ({job.type} {job.input}): {job.attempts} attempt(s), errors {types}"
            f" (expected 2 x {want})",
        )
    sc.finish()


# -- text no store can hold -------------------------------------------------------------------

NUL, SURROGATE = "\x00", "\ud800"
BAD_OPTIONS = {
    "queue": lambda t: {"queue": f"q{t}"},
    "owner": lambda t: {"owner": f"owner{t}"},
    "tags": lambda t: {"tags": ["fine", f"tag{t}"]},
    "metadata value": lambda t: {"metadata": {"k": f"v{t}"}},
    "metadata key": lambda t: {"metadata": {f"k{t}": "v"}},
    "nested metadata": lambda t: {"metadata": {"a": [{"b": f"c{t}"}]}},
    "unique key": lambda t: {"unique_key": f"key{t}"},
}


def test_unstorable_text(sc: Scenario) -> None:
    """NUL and lone surrogates in everything a caller gives (queue, owner, tags,
    metadata, unique key, input) and everything a handler writes (log lines, progress
    messages, exception messages, output). Caller text is refused with
    `InvalidJobInput` or `InvalidJobOption` and nothing is written, except a NUL inside
    the JSON input, which is stored escaped and comes back as given; handler text is
    stored with U+FFFD in place of what cannot be stored; the ordinary jobs alongside
    all succeed.
    """
    sc.name = "unstorable text (NUL, lone surrogates)"
    normal = sc.enqueue(jobs.fx, [{"seconds": 0.02}] * 30)
    refused: list[str] = []
    before = sc.count()

    async def caller(rt: bj.Runtime) -> list[str]:
        problems = []
        cases: list[tuple[str, str, dict]] = []
        for char in (NUL, SURROGATE):
            name = "NUL" if char == NUL else "surrogate"
            for field, make in BAD_OPTIONS.items():
                cases.append((f"{field} ({name})", "fx", {"inp": {}, **make(char)}))
        cases.append(("input (surrogate)", "fx-text", {"inp": {"where": "log", "text": SURROGATE}}))
        for what, job_type, options in cases:
            inp = options.pop("inp")
            try:
                await rt.enqueue(job_type, inp, **options)
            except (bj.InvalidJobInput, bj.InvalidJobOption):
                refused.append(what)
                continue
            except Exception as exc:
                problems.append(f"{what}: raised {exc!r}, not InvalidJobInput/InvalidJobOption")
                continue
            problems.append(f"{what}: accepted")
        # One bad input among good ones: the whole batch is refused.
        try:
            await rt.enqueue_many(
                jobs.fx_text, [{"where": "log"}] * 5 + [{"where": "log", "text": SURROGATE}]
            )
            problems.append("a batch with one bad input was accepted")
        except bj.InvalidJobInput:
            refused.append("batch")
        return problems

    for problem in sc.call(caller):
        sc.fail(f"caller text: {problem}")
    sc.check(sc.count() == before, f"refused enqueues wrote {sc.count() - before} job(s)")
    # A NUL inside a JSON input is written escaped (`\u0000`): stored and read back as given.
    (nul_input,) = sc.enqueue(jobs.fx_text, [{"where": "echo", "text": f"a{NUL}b"}])
    sc.notes["caller refusals"] = len(refused)
    handler = {
        where: sc.enqueue(jobs.fx_text, [{"where": where}])[0]
        for where in ("log", "progress", "error", "output")
    }
    sc.fault("handlers write unstorable text")
    sc.start_worker("-c", "4")
    sc.wait_drained(30)
    expect = {handler["error"]: {"failed"}}
    sc.settle([*normal, *handler.values(), nul_input], expect=expect)
    replaced = jobs.BAD_TEXT.replace(NUL, "\ufffd").replace(SURROGATE, "\ufffd")

    async def written(rt: bj.Runtime) -> dict[str, object]:
        found: dict[str, object] = {}
        events = await rt.store.events_after(0, job_id=handler["log"])
        found["log"] = [e.message for e in events if e.kind is bj.EventKind.LOG]
        events = await rt.store.events_after(0, job_id=handler["progress"])
        found["progress"] = [e.message for e in events if e.kind is bj.EventKind.PROGRESS]
        job = await rt.get(handler["error"])
        found["error"] = [e.message for e in job.errors]
        job = await rt.get(handler["output"])
        found["output"] = job.output
        job = await rt.get(nul_input)
        found["nul"] = (job.input.get("text"), (job.output or {}).get("text"))
        return found

    found = sc.call(written)
    sc.check(
        any(replaced in (m or "") for m in found["log"]),  # type: ignore[attr-defined]
        f"log line: {found['log']!r}",
    )
    sc.check(replaced in found["progress"], f"progress message: {found['progress']!r}")
    sc.check(found["error"] == [replaced], f"exception message: {found['error']!r}")
    sc.check(
        isinstance(found["output"], dict) and found["output"].get("text") == replaced,
        f"output: {found['output']!r}",
    )
    sc.check(found["nul"] == (f"a{NUL}b", f"a{NUL}b"), f"NUL in the input: {found['nul']!r}")
    sc.finish()


# -- big payloads and a flood of progress ------------------------------------------------------

MB = 2**20


def test_big_payloads_and_a_progress_flood(sc: Scenario) -> None:
    """A 10 MB input is refused (`PayloadTooLarge`) at the default limit and accepted
    with `max_payload` raised; a 10 MB output is stored by a worker whose limit allows
    it, and fails the job permanently (`PayloadTooLarge`) on a worker at the default
    limit; one handler reports 10,000 progress events per second while other jobs run
    beside it on the same worker, whose memory stays bounded.
    """
    sc.name = "10 MB input and output, 10,000 progress events/s"
    blob = "x" * (10 * MB)

    async def default_limit(rt: bj.Runtime) -> str | None:
        try:
            await rt.enqueue(jobs.fx, {"blob": blob})
        except bj.PayloadTooLarge:
            return None
        return "a 10 MB input was accepted at the default limit"

    problem = sc.call(default_limit)
    if problem:
        sc.fail(problem)
    sc.check(sc.count() == 0, "the refused input was written")
    sc.max_payload = 16 * MB
    big_in = sc.enqueue(jobs.fx, [{"blob": blob}])
    big_out = sc.enqueue(jobs.fx, [{"result_bytes": 10 * MB}])
    too_big = sc.enqueue(jobs.fx, [{"result_bytes": 2 * MB}], queue="small")
    flood_seconds = scale(2.0, 5.0)
    flood = sc.enqueue(jobs.fx, [{"seconds": flood_seconds, "progress_rate": 10_000}])
    others = sc.enqueue(jobs.fx, [{"seconds": 0.05}] * 100)
    sc.fault("big payloads enqueued")
    began = time.monotonic()
    worker = sc.start_worker("-c", "4", "-q", "default", "--max-payload", str(16 * MB), lease=5.0)
    sc.start_worker("-c", "1", "-q", "small", lease=5.0)
    rss: list[int] = []
    sc.wait_drained(60, tick=lambda: rss.append(worker.rss() or 0))
    took = time.monotonic() - began
    settled = sc.settle(
        big_in + big_out + too_big + flood + others, expect={too_big[0]: {"failed"}}
    )
    out = settled.jobs[big_out[0]]["output"]
    sc.check(
        isinstance(out, dict) and len(out.get("pad", "")) == 10 * MB, "the 10 MB output was cut"
    )
    stored = sc.db.value(  # by the attempt whose result was stored
        "SELECT count(*) FROM job_events WHERE job_id = ? AND kind = 'progress' AND attempt = ?",
        flood[0],
        settled.jobs[flood[0]]["attempts"],
    )
    emitted = int(flood_seconds * 10_000)
    sc.notes.update(
        {
            "progress events stored": f"{stored}/{emitted}",
            "drain s": round(took, 1),
            "worker RSS MB max": round(max(rss or [0]) / MB),
        }
    )
    sc.check(stored == emitted, f"{stored} of {emitted} progress events were stored")
    sc.check(max(rss or [0]) < 800 * MB, f"the worker grew to {max(rss) // MB} MB")

    async def record(rt: bj.Runtime) -> bj.Job:
        return await rt.get(too_big[0])

    job = sc.call(record)
    types = [e.type for e in job.errors]
    sc.check(types == ["PayloadTooLarge"], f"the 2 MB output on the small worker: {types}")
    sc.finish()


# -- a mixed fleet --------------------------------------------------------------------------------


def test_unknown_types_and_a_mixed_fleet(sc: Scenario) -> None:
    """Worker A knows `fx-a` and `fx-ab`, worker B `fx-b` and `fx-ab`; nobody knows
    `fx-orphan`. Each job runs only on a worker that knows its type, orphans wait
    (unclaimed, reported as unserved) until they are cancelled, and a worker of A killed
    while it runs `fx-a` jobs has them rescued by B (which does not know the type) and
    run again by A's replacement.
    """
    sc.name = "unknown types, mixed fleet"
    a_jobs = sc.enqueue(jobs.fx_a, [{"seconds": 0.05, "first_seconds": 5}] * 4)
    a_jobs += sc.enqueue(jobs.fx_a, [{"seconds": 0.05}] * 40)
    b_jobs = sc.enqueue(jobs.fx_b, [{"seconds": 0.05}] * 40)
    ab_jobs = sc.enqueue(jobs.fx_ab, [{"seconds": 0.05}] * 40)
    orphans = sc.enqueue(jobs.fx_orphan, [{"seconds": 0.01}] * 5)
    a = sc.start_worker("-c", "4", plugin="tests.faults.jobs:fleet_a")
    b = sc.start_worker("-c", "4", plugin="tests.faults.jobs:fleet_b")
    wait_until(
        lambda: len({i for i, _ in read_ledger(sc.ledger)} & set(a_jobs[:4])) == 4,
        30,
        "A to run the long fx-a jobs",
    )
    time.sleep(0.8)
    sc.kill(a, what="SIGKILL worker A")
    time.sleep(2.0)  # leases expire, B's rescuer requeues them
    a2 = sc.start_worker("-c", "4", plugin="tests.faults.jobs:fleet_a")
    sc.wait_drained(60, exclude_types=["fx-orphan"])

    async def unserved(rt: bj.Runtime) -> list[str]:
        return (await rt.stats()).unserved

    sc.check(sc.call(unserved) == ["fx-orphan"], "orphans are not reported as unserved")
    waiting = sc.db.query(
        "SELECT count(*) FROM jobs WHERE type = 'fx-orphan' AND status = 'queued' AND attempts = 0"
    )[0][0]
    sc.check(waiting == len(orphans), f"{len(orphans) - waiting} orphan(s) were claimed")

    async def cancel(rt: bj.Runtime) -> list[bj.JobStatus]:
        return [await rt.cancel(i, actor="test") for i in orphans]

    sc.check(set(sc.call(cancel)) == {S.CANCELLED}, "an orphan could not be cancelled")
    expect = {i: {"cancelled"} for i in orphans}
    settled = sc.settle(a_jobs + b_jobs + ab_jobs + orphans, expect=expect)
    a_pids, b_pids = {a.pid, a2.pid}, {b.pid}
    for job_id in a_jobs:
        pids = {x.pid for x in settled.by_job.get(job_id, [])}
        sc.check(pids <= a_pids, f"fx-a job {job_id} ran on {pids - a_pids}")
    for job_id in b_jobs:
        pids = {x.pid for x in settled.by_job.get(job_id, [])}
        sc.check(pids <= b_pids, f"fx-b job {job_id} ran on {pids - b_pids}")
    ab_pids = {x.pid for i in ab_jobs for x in settled.by_job.get(i, [])}
    sc.notes["fx-ab run by"] = f"{len(ab_pids & a_pids)} A, {len(ab_pids & b_pids)} B"
    for job_id in a_jobs[:4]:
        sc.check(settled.jobs[job_id]["crashes"] == 1, f"fx-a job {job_id} was not rescued")
    sc.finish()
