"""OpenTelemetry spans of jobs (the `otel` extra), following the messaging conventions.

Off unless turned on (`Runtime(tracing=True)` or `BRAINS_JOBS_TRACING=1`) and
opentelemetry-api is installed; then:

- enqueueing makes a `send {queue}` span (kind PRODUCER; one per insert, a batch
  carrying `messaging.batch.message_count`), and every job of it keeps the span's W3C
  `traceparent` in its `trace` column;
- each attempt runs in a `process {queue}` span (kind CONSUMER) whose parent is the
  job's producer context, with a link to it as well;
- a follow-up job enqueued by a handler (`ctx.enqueue`) gets a `send` span that is a
  child of the attempt's `process` span, so a chain of jobs is one trace.

With tracing off, `make_tracer` returns None: nothing is imported, no span is made, and
no `trace` is written or read. Spans go to whatever tracer provider the application
configured (without an SDK they are not recorded and no `trace` is written either).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .models import JobStatus

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .store.records import ClaimedJob, NewJob, Outcome

logger = logging.getLogger("brains_jobs.tracing")

SYSTEM = "brains_jobs"
INSTRUMENTATION = "brains_jobs"


def make_tracer(enabled: bool) -> JobTracer | None:
    """A tracer when `enabled` and OpenTelemetry is installed; None otherwise."""
    if not enabled:
        return None
    try:
        return JobTracer()
    except ImportError:
        logger.warning(
            "tracing is on but OpenTelemetry is not installed (pip install"
            " 'brains-jobs[otel]'): no spans are made"
        )
        return None


class Sending:
    """The producer span of one insert, told the ids of the jobs it sent."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def sent(self, ids: Sequence[int]) -> None:
        """Name the message (one job sent) on the span."""
        if len(ids) == 1:
            self.span.set_attribute("messaging.message.id", str(ids[0]))


class JobTracer:
    """Makes the producer and consumer spans of jobs (see the module docstring)."""

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._tracer = trace.get_tracer(INSTRUMENTATION)
        self._propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def send(self, jobs: Sequence[NewJob]) -> Iterator[Sending]:
        """A `send` span around inserting `jobs`, whose context each of them carries."""
        from opentelemetry.trace import SpanKind

        queues = {j.queue for j in jobs}
        queue = next(iter(queues)) if len(queues) == 1 else None
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
        }
        if queue is not None:
            attributes["messaging.destination.name"] = queue
        if len(jobs) > 1:
            attributes["messaging.batch.message_count"] = len(jobs)
        else:
            attributes["brains_jobs.job.type"] = jobs[0].type
            if jobs[0].id is not None:  # a follow-up job's id is reserved beforehand
                attributes["messaging.message.id"] = str(jobs[0].id)
        name = f"send {queue}" if queue is not None else "send"
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier)
            parent = carrier.get("traceparent")
            if parent is not None:
                for job in jobs:
                    job.trace = parent
            yield Sending(span)

    @contextlib.contextmanager
    def process(self, job: ClaimedJob) -> Iterator[Span]:
        """A `process` span around one attempt of `job`, linked to its producer."""
        from opentelemetry.trace import Link, SpanKind

        parent = None
        links = []
        if job.trace:
            extracted = self._propagator.extract({"traceparent": job.trace})
            producer = self._trace.get_current_span(extracted).get_span_context()
            if producer.is_valid:
                parent = extracted
                links.append(Link(producer))
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": job.queue,
            "messaging.message.id": str(job.id),
            "brains_jobs.job.type": job.type,
            "brains_jobs.job.attempt": job.attempt,
        }
        with self._tracer.start_as_current_span(
            f"process {job.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ) as span:
            yield span

    def ended(self, span: Span, outcome: Outcome) -> None:
        """Record how the attempt ended on its span."""
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("brains_jobs.job.outcome", outcome.status.value)
        if outcome.error is not None and outcome.status is not JobStatus.SUCCEEDED:
            span.set_attribute("error.type", str(outcome.error.get("type", "")))
            span.set_status(Status(StatusCode.ERROR, str(outcome.error.get("message", ""))))
