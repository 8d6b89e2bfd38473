"""brains-jobs: a plugin-extensible asyncio job runtime with typed jobs."""

from .artifacts import ArtifactNotFound as ArtifactNotFound
from .artifacts import ArtifactRef as ArtifactRef
from .artifacts import ArtifactStore as ArtifactStore
from .artifacts import DirectoryArtifactStore as DirectoryArtifactStore
from .bulk import BulkResult as BulkResult
from .config import Retention as Retention
from .config import Settings as Settings
from .context import JobContext as JobContext
from .definitions import Bound as Bound
from .definitions import GroupResults as GroupResults
from .definitions import JobDefinition as JobDefinition
from .definitions import job as job
from .enqueueing import JobRequest as JobRequest
from .events import Subscription as Subscription
from .exceptions import BrainsJobsError as BrainsJobsError
from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import DuplicateJob as DuplicateJob
from .exceptions import HandedOver as HandedOver
from .exceptions import InvalidJobInput as InvalidJobInput
from .exceptions import InvalidJobOption as InvalidJobOption
from .exceptions import InvalidJobOutput as InvalidJobOutput
from .exceptions import InvalidJobState as InvalidJobState
from .exceptions import JobCancelled as JobCancelled
from .exceptions import JobError as JobError
from .exceptions import JobFailed as JobFailed
from .exceptions import JobNotFound as JobNotFound
from .exceptions import LeaseLost as LeaseLost
from .exceptions import PayloadTooLarge as PayloadTooLarge
from .exceptions import PermanentError as PermanentError
from .exceptions import PluginError as PluginError
from .exceptions import StoreError as StoreError
from .exceptions import TemplateNotFound as TemplateNotFound
from .exceptions import Throttled as Throttled
from .exceptions import UnknownJobType as UnknownJobType
from .handle import JobHandle as JobHandle
from .limits import Concurrency as Concurrency
from .limits import Rate as Rate
from .maintenance import MaintenanceContext as MaintenanceContext
from .maintenance import Service as Service
from .models import Attempt as Attempt
from .models import AttemptError as AttemptError
from .models import Durations as Durations
from .models import EventKind as EventKind
from .models import Health as Health
from .models import Job as Job
from .models import JobEvent as JobEvent
from .models import JobPage as JobPage
from .models import JobStatus as JobStatus
from .models import LimitInfo as LimitInfo
from .models import Stats as Stats
from .models import TemplateInfo as TemplateInfo
from .models import WorkerInfo as WorkerInfo
from .plugins.hookspecs import Register as Register
from .plugins.hookspecs import RegisterArtifactStore as RegisterArtifactStore
from .plugins.hookspecs import RegisterCommand as RegisterCommand
from .plugins.hookspecs import RegisterService as RegisterService
from .plugins.hookspecs import RegisterStore as RegisterStore
from .plugins.hookspecs import RegisterSubscriber as RegisterSubscriber
from .plugins.hookspecs import hookimpl as hookimpl
from .retry import RetryPolicy as RetryPolicy
from .runtime import GroupHandle as GroupHandle
from .runtime import Runtime as Runtime
from .runtime import tune_gc_for_worker as tune_gc_for_worker
from .schedules import Cron as Cron
from .schedules import Every as Every
from .schedules import ScheduleInfo as ScheduleInfo
from .schedules import Tick as Tick
from .sync import SyncClient as SyncClient
from .versions import UpgradeFailed as UpgradeFailed
from .worker import Worker as Worker

__all__ = [
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
