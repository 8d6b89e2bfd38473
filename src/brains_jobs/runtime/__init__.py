"""`Runtime`: the host application's one object. It wires settings, plugins, the store,
the event bus, the artifact store, workers and maintenance (`base`); what users call is
grouped by domain in the modules beside it: `jobs` (enqueue, read, follow), `actions`
(cancel, retry, resubmit, force complete or fail, move, bulk actions, prune, attempts),
`tracking` (jobs worked on outside any worker), `workflows` (chains, groups),
`operations` (workers, maintenance, health, limits, stats), `templates` (named presets
of a job).
"""

from __future__ import annotations

from .actions import ActionsMixin
from .collector import tune_gc_for_worker as tune_gc_for_worker
from .jobs import JobsMixin
from .operations import OperationsMixin
from .schedules import SchedulesMixin
from .templates import TemplatesMixin
from .tracking import TrackingMixin
from .workflows import GroupHandle, WorkflowsMixin


class Runtime(
    JobsMixin,
    WorkflowsMixin,
    ActionsMixin,
    TrackingMixin,
    OperationsMixin,
    SchedulesMixin,
    TemplatesMixin,
):
    """Registry, plugins, store, events, workers and maintenance behind one `async with`.

    ``async with Runtime("sqlite+aiosqlite:///jobs.db") as rt:`` opens the store
    (creating its tables unless `create_schema=False`), loads plugins (entry points
    unless `load_entrypoints=False`, plus `plugins` given in code: modules, objects or
    `"package.module"` strings) and starts the event bus.

    :param url: the database (`BRAINS_JOBS_DATABASE_URL`; default
        `sqlite+aiosqlite:///brains_jobs.db`).
    :param plugins: plugins to load besides the installed ones (and those named by
        `BRAINS_JOBS_PLUGIN_MODULES`).
    :param jobs: job definitions to register directly.
    :param load_entrypoints: load the installed plugins (filtered by
        `BRAINS_JOBS_PLUGINS_ALLOW` and `BRAINS_JOBS_PLUGINS_DENY`).
    :param create_schema: create or upgrade the tables on opening.
    :param read_only: never create a database (commands that only read).
    :param wait_for_db: seconds to keep retrying an unreachable database on opening.
    :param artifacts: the artifact store (`BRAINS_JOBS_ARTIFACTS`).
    :param lease: seconds a claimed job is leased (`BRAINS_JOBS_LEASE`, default 30).
    :param max_payload: largest input or output in bytes (`BRAINS_JOBS_MAX_PAYLOAD`).
    :param retention: how long finished jobs are kept, a `Retention`
        (`BRAINS_JOBS_RETENTION_SUCCEEDED`, `_FAILED`, `_CANCELLED`).
    :param statement_timeout: the longest one statement may take (default 10s).
    :param tracing: make OpenTelemetry spans of enqueues and attempts, the trace context
        carried in each job (`BRAINS_JOBS_TRACING`; needs the `otel` extra).
    :param settings: a whole `Settings` object instead (the keywords above override it).
    """


__all__ = ["GroupHandle", "Runtime"]
