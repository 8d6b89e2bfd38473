"""The audit trail: which events each write leaves in `job_events`.

Every store writes exactly these, in this order within a transaction, and the store
contract suite (`brains_jobs.testing.contract`) checks it on each:

- enqueue: a `status queued` event per inserted job (none for a unique-key repeat).
- claim: a `status running` event per claimed job; its attempt is the new attempt.
- finish: the handlers' `progress` and `log` events first, in the order given; then,
  per outcome, a `status <new>` event with the outcome's message; then, per late
  outcome (its lease was lost), a `log` warning (`LATE_RESULT`). Follow-up jobs of the
  successes get their `status queued` events.
- heartbeat, mark_started, cancel_requested: none.
- release: a `status queued` (or `cancelled`) event per job, the reason as its message.
- apply (a `Change`): a `status <new>` event when the status changes, with the change's
  message and actor; otherwise an `action` event with them, when the change names an
  actor or a message.
- prune: none; the pruned jobs' events go with them.

Within one write, the events of different jobs come in job-id order (an enqueue: in
insertion order). A status event's `attempt` is the job's attempt count after the
write.
"""

from __future__ import annotations

from typing import Any

LATE_RESULT = "late {status} result rejected: the lease of this attempt was lost"
"""The message of the log event that records a rejected late outcome."""

LATE_RESULT_DATA: dict[str, Any] = {"level": "warning"}


def late_result(status: str) -> str:
    """The message recorded for a late `status` outcome that was rejected."""
    return LATE_RESULT.format(status=status)
