"""The public surface, pinned: what `brains_jobs`, `brains_jobs.testing` and
`brains_jobs.store` export is written out here, so that a change to it is a decision.
"""

from __future__ import annotations

import brains_jobs
import brains_jobs.store
import brains_jobs.testing

PACKAGE = [
    "ArtifactNotFound",
    "ArtifactRef",
    "ArtifactStore",
    "Attempt",
    "AttemptError",
    "Bound",
    "BrainsJobsError",
    "BulkResult",
    "Concurrency",
    "ConfigurationError",
    "Cron",
    "DirectoryArtifactStore",
    "DuplicateJob",
    "Durations",
    "EventKind",
    "Every",
    "GroupHandle",
    "GroupResults",
    "HandedOver",
    "Health",
    "InvalidJobInput",
    "InvalidJobOption",
    "InvalidJobOutput",
    "InvalidJobState",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobDefinition",
    "JobError",
    "JobEvent",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "JobPage",
    "JobRequest",
    "JobStatus",
    "LeaseLost",
    "LimitInfo",
    "MaintenanceContext",
    "PayloadTooLarge",
    "PermanentError",
    "PluginError",
    "Rate",
    "Register",
    "RegisterArtifactStore",
    "RegisterCommand",
    "RegisterService",
    "RegisterStore",
    "RegisterSubscriber",
    "Retention",
    "RetryPolicy",
    "Runtime",
    "ScheduleInfo",
    "Service",
    "Settings",
    "Stats",
    "StoreError",
    "Subscription",
    "SyncClient",
    "TemplateInfo",
    "TemplateNotFound",
    "Throttled",
    "Tick",
    "UnknownJobType",
    "UpgradeFailed",
    "Worker",
    "WorkerInfo",
    "hookimpl",
    "job",
    "tune_gc_for_worker",
]

TESTING = ["capture_events", "rescue", "run_job", "run_until_final", "runtime"]

STORE = [
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


def _public(module: object) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__class__", None).__name__ != "module"
    }


def test_the_package_exports_exactly_these_names() -> None:
    assert brains_jobs.__all__ == PACKAGE
    assert _public(brains_jobs) == set(PACKAGE)


def test_the_testing_kit_exports_exactly_these_names() -> None:
    assert brains_jobs.testing.__all__ == TESTING


def test_the_store_package_exports_exactly_these_names() -> None:
    assert brains_jobs.store.__all__ == STORE


def test_every_public_name_has_a_docstring() -> None:
    for module, names in (
        (brains_jobs, PACKAGE),
        (brains_jobs.testing, TESTING),
        (brains_jobs.store, STORE),
    ):
        for name in names:
            obj = getattr(module, name)
            assert (obj.__doc__ or "").strip(), f"{module.__name__}.{name} has no docstring"
