"""What this process did with jobs, counted in memory for the Prometheus exporter.

The hot paths (enqueue, a worker's written results, the rescuer, the claim) add plain
ints to dictionaries keyed by labels (job type, queue, status: never ids); nothing here
imports prometheus-client. The exporter (`brains_jobs.observability`) turns `COUNTS`
into metric families when it is scraped, so a process that nobody scrapes pays for a
dictionary update per job and nothing more. Counts are per process and only grow, as
Prometheus counters expect; they start at zero when the process starts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .store.records import NewJobBatch

if TYPE_CHECKING:
    from .store.records import ClaimedJob, Enqueued, NewJob

#: Upper bounds (seconds) of the run-duration histogram's buckets.
RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Upper bounds (seconds) of the queue-wait histogram's buckets.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

Pair = tuple[str, str]  # (job type, queue)


class Histogram:
    """Observations counted per bucket (not cumulative: the exporter sums them up)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class JobCounts:
    """The counters of one process (see the module docstring)."""

    def __init__(self) -> None:
        self.enqueued: dict[Pair, int] = {}
        self.finished: dict[tuple[str, str, str], int] = {}
        self.retries: dict[Pair, int] = {}
        self.lease_expired: dict[Pair, int] = {}
        self.run_seconds: dict[Pair, Histogram] = {}
        self.wait_seconds: dict[Pair, Histogram] = {}

    def add_enqueued(self, jobs: Sequence[NewJob], rows: Iterable[Enqueued]) -> None:
        """Count the jobs of an insert that were created (not unique-key repeats)."""
        counts = self.enqueued
        if type(jobs) is NewJobBatch and jobs.unread:  # one type and queue (no ABC check)
            key = (jobs.template.type, jobs.template.queue)
            counts[key] = counts.get(key, 0) + sum(1 for row in rows if row.created)
            return
        for job, row in zip(jobs, rows, strict=False):
            if row.created:
                key = (job.type, job.queue)
                counts[key] = counts.get(key, 0) + 1

    def add_inserted(self, jobs: Iterable[NewJob]) -> None:
        """Count jobs known to be inserted (follow-up jobs written with their parent's
        success, the jobs of schedule ticks).
        """
        counts = self.enqueued
        for job in jobs:
            key = (job.type, job.queue)
            counts[key] = counts.get(key, 0) + 1

    def add_finished(self, job_type: str, queue: str, status: str, jobs: int = 1) -> None:
        """Count `jobs` jobs (of one type and queue) that reached a final status."""
        key = (job_type, queue, status)
        self.finished[key] = self.finished.get(key, 0) + jobs

    def add_retry(self, job_type: str, queue: str) -> None:
        """Count a failed attempt that waits for another one."""
        key = (job_type, queue)
        self.retries[key] = self.retries.get(key, 0) + 1

    def add_lease_expired(self, job_type: str, queue: str) -> None:
        """Count a job the rescuer took back from a worker that stopped renewing it."""
        key = (job_type, queue)
        self.lease_expired[key] = self.lease_expired.get(key, 0) + 1

    def observe_run(self, job_type: str, queue: str, seconds: float) -> None:
        """Count how long one attempt's handler ran (once per job: `observe` inlined)."""
        histogram = self.run_seconds.get((job_type, queue))
        if histogram is None:
            histogram = self.run_seconds[job_type, queue] = Histogram(RUN_BUCKETS)
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1
        histogram.total += seconds

    def observe_waits(self, jobs: Iterable[ClaimedJob]) -> None:
        """Count how long each job of a claim waited between its run time and its claim
        (the jobs of a claim mostly share a type and queue: one lookup for each run).
        """
        histograms = self.wait_seconds
        job_type = queue = ""
        counts: list[int] = []
        bounds: Sequence[float] = ()
        total = 0.0
        histogram: Histogram | None = None
        for job in jobs:
            if job.type != job_type or job.queue != queue:
                if histogram is not None:
                    histogram.total += total
                job_type, queue, total = job.type, job.queue, 0.0
                histogram = histograms.get((job_type, queue))
                if histogram is None:
                    histogram = histograms[job_type, queue] = Histogram(WAIT_BUCKETS)
                counts, bounds = histogram.counts, histogram.bounds
            waited = job.waited
            if waited > 0.0:
                counts[bisect_left(bounds, waited)] += 1
                total += waited
            else:
                counts[0] += 1
        if histogram is not None:
            histogram.total += total


#: This process's counts.
COUNTS = JobCounts()
