"""Job types of the fault suite, also loadable as plugins:

- `--plugin tests.faults.jobs` registers every type below except the fleet-only ones and
  the orphan;
- `--plugin tests.faults.jobs:fleet_a` registers `fx-a` and `fx-ab` only,
  `--plugin tests.faults.jobs:fleet_b` registers `fx-b` and `fx-ab` only (a mixed fleet);
- `fx-orphan` is known to the test process alone: no worker can run it.

Every handler writes lines to the ledger file named by BRAINS_JOBS_TEST_LEDGER, one
`write()` each (atomic between processes with O_APPEND):

    job_id attempt pid event monotonic_seconds

with `event` one of `start` (the handler was entered), `effect` (the handler did the one
thing that must not happen twice; written just before it returns its output) and `end`
(the handler is gone: written in a `finally`, so a cancelled or failing handler writes it
too; only a process that dies writes none). `time.monotonic()` is one clock for every
process of the machine, so lines of different workers can be compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import time
from typing import Literal

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj

LEDGER_ENV = "BRAINS_JOBS_TEST_LEDGER"
BAD_TEXT = "nul:\x00 surrogate:\ud800 end"
"""Text no store can hold as it is: a NUL and a lone surrogate."""


def open_ledger() -> int | None:
    """The ledger opened for appending, or None when no ledger is named."""
    path = os.environ.get(LEDGER_ENV)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if path else None


def ledger_head(job_id: int, attempt: int, event: str) -> bytes:
    """A ledger line up to its time (see the module docstring)."""
    return f"{job_id} {attempt} {os.getpid()} {event} ".encode()


def write_line(fd: int, head: bytes) -> None:
    """Append `head` and the time now, in one `write()`."""
    os.write(fd, head + b"%.6f\n" % time.monotonic())


def note(job_id: int, attempt: int, event: str) -> None:
    """Append one ledger line (see the module docstring)."""
    fd = open_ledger()
    if fd is None:
        return
    try:
        write_line(fd, ledger_head(job_id, attempt, event))
    finally:
        os.close(fd)


# -- the effect job ---------------------------------------------------------------------


class Work(BaseModel):
    """What one `fx` job does: wait `seconds` in `steps` (its first attempt waits
    `first_seconds` instead, when given), fail its first `fail_attempts` attempts, then
    record its effect and return `result_bytes` bytes of output. With `progress_rate`,
    it reports that many progress events per second while it waits; with `shielded`,
    it ignores cancellation while it waits.
    """

    seconds: float = Field(0.0, ge=0, le=3600)
    first_seconds: float | None = Field(None, ge=0, le=3600)
    steps: int = Field(1, ge=1, le=100_000)
    fail_attempts: int = Field(0, ge=0)
    result_bytes: int = Field(0, ge=0)
    progress_rate: int = Field(0, ge=0)
    shielded: bool = False
    blob: str = ""


class Done(BaseModel):
    """The output: the attempt that produced it, and padding."""

    attempt: int
    pad: str = ""


async def _effect(ctx: bj.JobContext, inp: Work) -> Done:
    note(ctx.job_id, ctx.attempt, "start")
    try:
        seconds = inp.seconds
        if ctx.attempt == 1 and inp.first_seconds is not None:
            seconds = inp.first_seconds
        with anyio.CancelScope(shield=inp.shielded):
            if inp.progress_rate:
                await _progress_flood(ctx, seconds, inp.progress_rate)
            else:
                for _ in range(inp.steps):
                    await anyio.sleep(seconds / inp.steps)
        if ctx.attempt <= inp.fail_attempts:
            raise RuntimeError(f"failing attempt {ctx.attempt} on purpose")
        note(ctx.job_id, ctx.attempt, "effect")
        return Done(attempt=ctx.attempt, pad="x" * inp.result_bytes)
    finally:
        note(ctx.job_id, ctx.attempt, "end")


async def _progress_flood(ctx: bj.JobContext, seconds: float, rate: int) -> None:
    """Report `rate` progress events per second for `seconds`, in bursts every 10 ms."""
    total = max(1, int(seconds * rate))
    begun = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - begun) * rate) + 1)
        while sent < due:
            sent += 1
            await ctx.progress(sent / total, f"event {sent}")
        await anyio.sleep(0.01)


def _definition(name: str, **options: object) -> bj.JobDefinition[Work, Done]:
    settings: dict[str, object] = {
        "max_attempts": 5,
        "retry": bj.RetryPolicy(base=0.05, cap=0.5, jitter=True),
        "max_crashes": 3,
    }
    settings.update(options)
    return bj.JobDefinition(
        name,
        _effect,
        input_model=Work,
        output_model=Done,
        description="Waits, then records its effect in the ledger and returns.",
        **settings,  # type: ignore[arg-type]
    )


fx = _definition("fx")
fx_a = _definition("fx-a")
fx_b = _definition("fx-b")
fx_ab = _definition("fx-ab")
fx_orphan = _definition("fx-orphan")


# -- poison pills -------------------------------------------------------------------------

_HOARD: list[bytearray] = []  # a leak, as a runaway cache would hold it


class Pill(BaseModel):
    kind: Literal["exit", "segv", "oom"]


@bj.job("pill", max_attempts=10, backoff=0.05, backoff_cap=0.2, max_crashes=2)
async def pill(ctx: bj.JobContext, inp: Pill) -> Done:
    """Kills its worker: `os._exit`, a segmentation fault, or a memory blow-up under an
    address-space cap (it keeps what it took, so the whole process starves).

    The blow-up still writes its `end` line: the ledger is opened and the line's text
    made before the process starves, and small objects set aside beforehand are let go
    at the end, so the few bytes the line needs come from the interpreter's own free
    blocks, which the database threads of the worker (whose allocations go to malloc)
    cannot take first.
    """
    note(ctx.job_id, ctx.attempt, "start")
    if inp.kind == "exit":
        os._exit(3)
    if inp.kind == "segv":
        ctypes.string_at(0)
    fd = open_ledger()
    head = ledger_head(ctx.job_id, ctx.attempt, "end")
    spare: list[bytes] | None = [b"x" * n for n in range(0, 512, 8) for _ in range(16)]
    reserve: bytearray | None = bytearray(256 * 1024)
    try:
        exhaust_memory(256 * 2**20)
        raise MemoryError("the worker's address space is exhausted")
    finally:
        spare = reserve = None
        if fd is not None:
            with contextlib.suppress(MemoryError):
                write_line(fd, head)
            os.close(fd)
        del spare, reserve


def exhaust_memory(headroom: int) -> None:
    """Cap this process's address space at `headroom` bytes above its size, then take
    all of it and keep it (down to blocks of 256 bytes).
    """
    limit = _address_space() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    size = 16 * 2**20
    while size >= 256:
        try:
            while True:
                _HOARD.append(bytearray(size))
        except MemoryError:
            size //= 4


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


# -- handlers that misbehave ------------------------------------------------------------


class Misbehave(BaseModel):
    seconds: float = Field(1.5, ge=0)
    what: Literal["cancelled", "systemexit", "keyboardinterrupt"] = "cancelled"


class Never(BaseModel):
    """These handlers never return an output."""

    attempt: int


_BAD = {"max_attempts": 2, "backoff": 0.05, "backoff_cap": 0.1}


@bj.job("bad-block", timeout=1.0, **_BAD)  # type: ignore[arg-type]
async def bad_block(ctx: bj.JobContext, inp: Misbehave) -> Never:
    """Blocks the event loop past its timeout, then waits at an `await`."""
    note(ctx.job_id, ctx.attempt, "start")
    try:
        time.sleep(inp.seconds)  # noqa: ASYNC251 -- blocking the loop is the point
        await anyio.sleep(60)
        raise AssertionError("not reached: the timeout cancels the sleep above")
    finally:
        note(ctx.job_id, ctx.attempt, "end")


@bj.job("bad-ignore", timeout=0.5, **_BAD)  # type: ignore[arg-type]
async def bad_ignore(ctx: bj.JobContext, inp: Misbehave) -> Never:
    """Catches its cancellation and goes on for `seconds` (shielded), then re-raises."""
    note(ctx.job_id, ctx.attempt, "start")
    try:
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await anyio.sleep(inp.seconds)
            raise
        raise AssertionError("not reached")
    finally:
        note(ctx.job_id, ctx.attempt, "end")


@bj.job("bad-thread", timeout=0.5, **_BAD)  # type: ignore[arg-type]
def bad_thread(ctx: bj.JobContext, inp: Misbehave) -> Never:
    """A plain `def` handler (run in a thread) that sleeps past its timeout, then
    notices that it was cancelled.
    """
    note(ctx.job_id, ctx.attempt, "start")
    try:
        time.sleep(inp.seconds)
        ctx.raise_if_cancelled()
        raise RuntimeError("the timeout did not mark the attempt cancelled")
    finally:
        note(ctx.job_id, ctx.attempt, "end")


@bj.job("bad-to-thread", timeout=0.5, **_BAD)  # type: ignore[arg-type]
async def bad_to_thread(ctx: bj.JobContext, inp: Misbehave) -> Never:
    """Hands blocking work to `anyio.to_thread.run_sync` past its timeout."""
    note(ctx.job_id, ctx.attempt, "start")
    try:
        await anyio.to_thread.run_sync(time.sleep, inp.seconds)
        await anyio.sleep(60)  # cancelled here if not before
        raise AssertionError("not reached")
    finally:
        note(ctx.job_id, ctx.attempt, "end")


@bj.job("bad-raise", **_BAD)  # type: ignore[arg-type]
async def bad_raise(ctx: bj.JobContext, inp: Misbehave) -> Never:
    """Raises `CancelledError`, `SystemExit` or `KeyboardInterrupt` itself."""
    note(ctx.job_id, ctx.attempt, "start")
    try:
        await anyio.sleep(0.01)
        if inp.what == "cancelled":
            raise asyncio.CancelledError("raised by the handler")
        if inp.what == "systemexit":
            raise SystemExit(7)
        raise KeyboardInterrupt
    finally:
        note(ctx.job_id, ctx.attempt, "end")


# -- text no store can hold ---------------------------------------------------------------


class Scribble(BaseModel):
    where: Literal["log", "progress", "error", "output", "echo"]
    text: str = "plain"


class Scribbled(BaseModel):
    attempt: int
    text: str


@bj.job("fx-text", max_attempts=1)
async def fx_text(ctx: bj.JobContext, inp: Scribble) -> Scribbled:
    """Writes `BAD_TEXT` where it is told: a log line, a progress message, an exception
    message or its output. Echoes its input text in the output otherwise.
    """
    note(ctx.job_id, ctx.attempt, "start")
    try:
        text = inp.text
        if inp.where == "log":
            ctx.logger.warning("a log line with %s", BAD_TEXT)
        elif inp.where == "progress":
            await ctx.progress(0.5, BAD_TEXT)
        elif inp.where == "error":
            raise RuntimeError(BAD_TEXT)
        elif inp.where == "output":
            text = BAD_TEXT
        note(ctx.job_id, ctx.attempt, "effect")
        return Scribbled(attempt=ctx.attempt, text=text)
    finally:
        note(ctx.job_id, ctx.attempt, "end")


# -- plugins --------------------------------------------------------------------------------

ALL: list[bj.JobDefinition] = [  # type: ignore[type-arg]
    fx,
    pill,
    bad_block,
    bad_ignore,
    bad_thread,
    bad_to_thread,
    bad_raise,
    fx_text,
]
"""What `--plugin tests.faults.jobs` registers."""

EVERY: list[bj.JobDefinition] = [*ALL, fx_a, fx_b, fx_ab, fx_orphan]  # type: ignore[type-arg]
"""What the test process knows (enqueues, rescues, reads)."""


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    for definition in ALL:
        register(definition)


class Fleet:
    """A plugin object that registers some job types only."""

    def __init__(self, name: str, *definitions: bj.JobDefinition) -> None:  # type: ignore[type-arg]
        self.name = name
        self.definitions = definitions

    @bj.hookimpl
    def brains_jobs_register_jobs(self, register: bj.Register) -> None:
        for definition in self.definitions:
            register(definition)


fleet_a = Fleet("fleet-a", fx_a, fx_ab)
fleet_b = Fleet("fleet-b", fx_b, fx_ab)
