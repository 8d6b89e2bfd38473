"""The process's job counters (`brains_jobs.metrics.JobCounts`): histograms count each
observation in its bucket and sum them, whatever order a claim's jobs come in.
"""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given
from hypothesis import strategies as st

from brains_jobs.metrics import RUN_BUCKETS, WAIT_BUCKETS, JobCounts
from brains_jobs.store.records import ClaimedJob


def _job(i: int, job_type: str, queue: str, waited: float) -> ClaimedJob:
    return ClaimedJob(i, job_type, queue, "{}", 1, 3, "token", waited=waited)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["default", "slow"]),
            st.floats(min_value=-10.0, max_value=5000.0, allow_nan=False),
        ),
        max_size=40,
    )
)
def test_queue_waits_are_counted_per_type_and_queue(claim: list[tuple[str, str, float]]) -> None:
    counts = JobCounts()
    counts.observe_waits([_job(i, t, q, w) for i, (t, q, w) in enumerate(claim)])
    expected: dict[tuple[str, str], list[float]] = {}
    for job_type, queue, waited in claim:
        expected.setdefault((job_type, queue), []).append(max(waited, 0.0))
    assert set(counts.wait_seconds) == set(expected)
    for pair, waits in expected.items():
        histogram = counts.wait_seconds[pair]
        buckets = [0] * (len(WAIT_BUCKETS) + 1)
        for waited in waits:
            buckets[bisect_left(WAIT_BUCKETS, waited)] += 1
        assert histogram.counts == buckets
        assert abs(histogram.total - sum(waits)) <= 1e-9 * max(1.0, sum(waits))


def test_run_times_are_counted_in_their_bucket() -> None:
    counts = JobCounts()
    for seconds in (0.001, 0.007, 0.007, 400.0):
        counts.observe_run("a", "default", seconds)
    histogram = counts.run_seconds["a", "default"]
    assert histogram.counts[0] == 1  # up to 5 ms
    assert histogram.counts[1] == 2  # up to 10 ms
    assert histogram.counts[len(RUN_BUCKETS)] == 1  # over the last bound
    assert sum(histogram.counts) == 4
    assert abs(histogram.total - 400.015) < 1e-9
