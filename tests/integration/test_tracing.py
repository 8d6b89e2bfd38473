"""OpenTelemetry spans of jobs: a `send` span at enqueue whose context the job carries,
a `process` span per attempt linked to it, follow-up jobs that continue the trace, and
nothing written when tracing is off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

import brains_jobs as bj

EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


class Step(BaseModel):
    n: int


@bj.job("traced-child", max_attempts=1)
async def child(ctx: bj.JobContext, inp: Step) -> Step:
    return Step(n=inp.n + 1)


@bj.job("traced-parent", max_attempts=2, backoff=0.01)
async def parent(ctx: bj.JobContext, inp: Step) -> Step:
    if ctx.attempt == 1:
        raise RuntimeError("once")
    await ctx.enqueue(child, Step(n=inp.n))
    return inp


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per process; the first test sets it.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_PROVIDER)
    # Nothing else in the suite installs one: another provider is a bug of the suite.
    assert trace.get_tracer_provider() is _PROVIDER, "another tracer provider is installed"
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def traceparent(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


@pytest.mark.anyio
async def test_attempts_link_to_the_enqueue_and_follow_ups_continue_the_trace(
    database_url: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    async with bj.Runtime(
        database_url,
        jobs=[parent, child],
        load_entrypoints=False,
        artifacts=str(tmp_path),
        tracing=True,
    ) as rt:
        handle = await rt.enqueue(parent, Step(n=1))
        await rt.run_worker(burst=True, maintenance=False)
        assert (await handle.result(timeout=5)).n == 1
        (follow_up,) = (await rt.list(type="traced-child")).jobs
        assert follow_up.status is bj.JobStatus.SUCCEEDED
    found = spans.get_finished_spans()
    sends = [s for s in found if s.kind is SpanKind.PRODUCER]
    processes = [s for s in found if s.kind is SpanKind.CONSUMER]
    assert [s.name for s in sends] == ["send default", "send default"]
    assert [s.name for s in processes] == ["process default"] * 3  # 2 attempts, 1 child
    send = sends[0]
    assert send.attributes is not None
    assert send.attributes["messaging.system"] == "brains_jobs"
    assert send.attributes["messaging.destination.name"] == "default"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.message.id"] == str(handle.id)
    send_ctx = send.get_span_context()
    assert send_ctx is not None
    first, second, child_run = processes
    for attempt, run in enumerate((first, second), start=1):
        assert run.attributes is not None
        assert run.attributes["messaging.message.id"] == str(handle.id)
        assert run.attributes["messaging.operation.type"] == "process"
        assert run.attributes["brains_jobs.job.attempt"] == attempt
        # The attempt links to the producer context, in its trace.
        assert [link.context.span_id for link in run.links] == [send_ctx.span_id]
        assert run.context is not None and run.context.trace_id == send_ctx.trace_id
        assert run.parent is not None and run.parent.span_id == send_ctx.span_id
    assert not first.status.is_ok and first.attributes is not None
    assert first.attributes["brains_jobs.job.outcome"] == "queued"
    # ctx.enqueue: the follow-up's `send` is a child of the attempt that made it...
    child_send = sends[1]
    assert second.context is not None
    assert child_send.parent is not None and child_send.parent.span_id == second.context.span_id
    assert child_send.attributes is not None
    assert child_send.attributes["messaging.message.id"] == str(follow_up.id)
    # ...and the follow-up's attempt links to that send: one trace from end to end.
    child_send_ctx = child_send.get_span_context()
    assert child_send_ctx is not None
    assert [link.context.span_id for link in child_run.links] == [child_send_ctx.span_id]
    assert child_run.context is not None and child_run.context.trace_id == send_ctx.trace_id


@pytest.mark.anyio
async def test_the_trace_context_is_written_with_tracing_on_and_only_then(
    database_url: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    for tracing in (True, False):
        async with bj.Runtime(
            database_url,
            jobs=[parent, child],
            load_entrypoints=False,
            artifacts=str(tmp_path),
            tracing=tracing,
        ) as rt:
            spans.clear()
            await rt.enqueue(parent, Step(n=0), queue=f"one-{tracing}")
            await rt.enqueue_many(parent, [Step(n=n) for n in range(3)], queue=f"bulk-{tracing}")
            one = await rt.store.claim(
                worker_id="w", queues=[f"one-{tracing}"], types=["traced-parent"], limit=5, lease=5
            )
            bulk = await rt.store.claim(
                worker_id="w", queues=[f"bulk-{tracing}"], types=["traced-parent"], limit=5, lease=5
            )
            found = spans.get_finished_spans()
            if not tracing:
                assert found == ()
                assert [j.trace for j in one + bulk] == [None] * 4
                continue
            single, batch = found
            assert [j.trace for j in one] == [traceparent(single)]
            assert [j.trace for j in bulk] == [traceparent(batch)] * 3
            assert batch.attributes is not None
            assert batch.attributes["messaging.batch.message_count"] == 3
