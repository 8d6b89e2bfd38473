"""The Prometheus exposition of brains-jobs (prometheus-client, the `web` extra).

At scrape time a custom collector turns this process's counts (`brains_jobs.metrics`)
into counters and histograms, and the leader's last queue snapshot (see
`brains_jobs.maintenance.gauges`) into gauges: a scrape reads one row, it never counts
jobs. prometheus-client is imported only here, when a scrape comes.

| metric | labels | what |
|---|---|---|
| `brains_jobs_jobs_enqueued_total` | type, queue | jobs this process inserted |
| `brains_jobs_jobs_finished_total` | type, queue, status | final outcomes written |
| `brains_jobs_retries_total` | type, queue | failed attempts that wait for another |
| `brains_jobs_lease_expired_total` | type, queue | jobs rescued after their lease expired |
| `brains_jobs_job_run_seconds` | type, queue | handler run time (histogram) |
| `brains_jobs_job_queue_wait_seconds` | type, queue | run time to claim (histogram) |
| `brains_jobs_queue_depth` | queue, status | unfinished jobs (leader's snapshot) |
| `brains_jobs_oldest_queued_age_seconds` | queue | oldest ready job's wait (snapshot) |
| `brains_jobs_queue_snapshot_timestamp_seconds` | | when the snapshot was taken |
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..maintenance.gauges import SNAPSHOT
from ..metrics import COUNTS, Histogram, JobCounts

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ..store.snapshots import Snapshot, Snapshots

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATUSES = ("waiting", "queued", "running")


async def render(store: Snapshots, counts: JobCounts = COUNTS) -> bytes:
    """The metrics of this process and the last queue snapshot, in the text format."""
    return exposition(counts, await store.snapshot(SNAPSHOT))


def exposition(counts: JobCounts, snapshot: Snapshot | None) -> bytes:
    """`counts` and `snapshot` in the Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(counts, snapshot))
    return generate_latest(registry)


class JobsCollector:
    """Metric families made from the counts and the snapshot when collected."""

    def __init__(self, counts: JobCounts, snapshot: Snapshot | None) -> None:
        self.counts = counts
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        counts = self.counts
        pairs = ["type", "queue"]
        for name, doc, values, labels in (
            ("brains_jobs_jobs_enqueued", "Jobs this process enqueued.", counts.enqueued, pairs),
            (
                "brains_jobs_jobs_finished",
                "Jobs that reached a final status, as this process wrote it.",
                counts.finished,
                [*pairs, "status"],
            ),
            (
                "brains_jobs_retries",
                "Failed attempts that wait for another attempt.",
                counts.retries,
                pairs,
            ),
            (
                "brains_jobs_lease_expired",
                "Jobs this process rescued after their worker stopped renewing the lease.",
                counts.lease_expired,
                pairs,
            ),
        ):
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in list(values.items()):
                family.add_metric(list(key), value)
            yield family
        yield _histogram(
            "brains_jobs_job_run_seconds", "How long handlers ran, per attempt.", counts.run_seconds
        )
        yield _histogram(
            "brains_jobs_job_queue_wait_seconds",
            "How long jobs waited from their run time to their claim.",
            counts.wait_seconds,
        )
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "brains_jobs_queue_depth",
            "Unfinished jobs by queue and status, as the leader last counted them.",
            labels=["queue", "status"],
        )
        oldest = GaugeMetricFamily(
            "brains_jobs_oldest_queued_age_seconds",
            "Seconds the oldest ready job of each queue had waited, when last counted.",
            labels=["queue"],
        )
        taken = GaugeMetricFamily(
            "brains_jobs_queue_snapshot_timestamp_seconds",
            "When the leader last counted the queues (Unix time).",
        )
        if self.snapshot is not None:
            data: dict[str, Any] = json.loads(self.snapshot.data)
            found = {(q, s): n for q, s, n in data.get("depth", [])}
            queues = sorted({q for q, _ in found} | set(data.get("queues", [])))
            ages = data.get("oldest_ready_age", {})
            for queue in queues:
                for status in STATUSES:
                    depth.add_metric([queue, status], found.get((queue, status), 0))
                oldest.add_metric([queue], float(ages.get(queue) or 0.0))
            taken.add_metric([], self.snapshot.taken_at.timestamp())
        yield depth
        yield oldest
        yield taken


def _histogram(name: str, doc: str, values: dict[tuple[str, str], Histogram]) -> Metric:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, doc, labels=["type", "queue"])
    for key, histogram in list(values.items()):
        buckets = []
        running = 0
        for bound, count in zip([*histogram.bounds, math.inf], histogram.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == math.inf else repr(float(bound)), running))
        family.add_metric(list(key), buckets, histogram.total)
    return family
