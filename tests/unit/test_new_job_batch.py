"""`NewJobBatch`: jobs that differ only in their input read as the `NewJob`s they stand
for, and stay unread (insertable from the template alone) until something reads them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from brains_jobs.limits import KeySettings
from brains_jobs.store import NewJob, NewJobBatch


def _template() -> NewJob:
    """A job with every field away from its default, so that a field the batch forgot
    to copy shows.
    """
    return NewJob(
        type="t",
        queue="q",
        priority=5,
        input='{"template":true}',
        max_attempts=7,
        run_at=datetime(2030, 1, 1, tzinfo=UTC),
        unique_key="k",
        tags=("a",),
        metadata={"m": 1},
        owner="o",
        parent_id=3,
        id=11,
        on_conflict="replace",
        unique_keep=True,
        depends_on=(1, 2),
        on_parent_failure="run",
        input_from="parent",
        limits=(KeySettings("key", 1, None, None),),
        version=2,
        original_id=9,
        track_ttl=30.0,
        trace="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


def test_every_job_is_the_template_with_its_own_input() -> None:
    template = _template()
    for f in dataclasses.fields(NewJob):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        assert getattr(template, f.name) != default, f"{f.name} is left at its default"
    batch = NewJobBatch(template, ['{"i":0}', '{"i":1}', '{"i":2}'])
    assert len(batch) == 3
    assert list(batch) == [
        dataclasses.replace(template, input=text) for text in ('{"i":0}', '{"i":1}', '{"i":2}')
    ]
    assert batch[1].input == '{"i":1}' and batch[-1].input == '{"i":2}'
    assert [j.input for j in batch[:2]] == ['{"i":0}', '{"i":1}']


def test_a_batch_is_unread_until_a_job_is_read_and_changes_then_count() -> None:
    batch = NewJobBatch(_template(), ['{"i":0}', '{"i":1}'])
    assert batch.unread and len(batch) == 2 and bool(batch)
    for job in batch:
        job.trace = "changed"
    assert not batch.unread
    assert [j.trace for j in batch] == ["changed", "changed"]
    assert batch.template.trace != "changed"
