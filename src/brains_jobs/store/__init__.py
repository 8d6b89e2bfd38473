"""Job stores: the interface every backend implements, its records, and the backends.

A third-party store implements `Store` (every role in `brains_jobs.store.roles`), is
registered through the `brains_jobs_register_stores` hook, and proves itself with the
contract suite in `brains_jobs.testing.contract`.
"""

from .records import Change as Change
from .records import ClaimedJob as ClaimedJob
from .records import ClaimRequest as ClaimRequest
from .records import Enqueued as Enqueued
from .records import ExpiredJob as ExpiredJob
from .records import JobFilter as JobFilter
from .records import NewEvent as NewEvent
from .records import NewJob as NewJob
from .records import NewJobBatch as NewJobBatch
from .records import Outcome as Outcome
from .records import StoreOptions as StoreOptions
from .roles import Admin as Admin
from .roles import EventLog as EventLog
from .roles import Lifecycle as Lifecycle
from .roles import Maintenance as Maintenance
from .roles import Producer as Producer
from .roles import Store as Store
from .roles import Templates as Templates
from .roles import WorkQueue as WorkQueue
from .schedules import Schedules as Schedules
from .snapshots import Snapshots as Snapshots

__all__ = [
    "Admin",
    "Change",
    "ClaimRequest",
    "ClaimedJob",
    "Enqueued",
    "EventLog",
    "ExpiredJob",
    "JobFilter",
    "Lifecycle",
    "Maintenance",
    "NewEvent",
    "NewJob",
    "NewJobBatch",
    "Outcome",
    "Producer",
    "Schedules",
    "Snapshots",
    "Store",
    "StoreOptions",
    "Templates",
    "WorkQueue",
]
