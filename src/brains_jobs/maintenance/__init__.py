"""Background services of a database: one module per service, run by a group, the
leader-only ones in one process at a time.

- `rescuer`: jobs whose lease expired go back to work (every process).
- `pruner`: finished jobs past their retention are deleted (leader).
- `reaper`: silent workers leave the registry; unserved job types are reported (leader).
- `promoter`: waiting jobs that a resolution missed are settled (leader).
- `scheduler`: the jobs of recurring schedules are enqueued as their ticks come (leader).
- `gauges`: the queues are counted for the metrics gauges (leader).
- `callbacks`: lifecycle callbacks that a dying worker did not run are run (every
  process, for the types it knows).
"""

from .callbacks import CallbackSweeper as CallbackSweeper
from .gauges import QueueGauges as QueueGauges
from .promoter import Promoter as Promoter
from .pruner import Pruner as Pruner
from .reaper import Reaper as Reaper
from .rescuer import Rescuer as Rescuer
from .scheduler import Scheduler as Scheduler
from .service import MaintenanceContext as MaintenanceContext
from .service import MaintenanceGroup as MaintenanceGroup
from .service import Service as Service


def builtin_services() -> list[Service]:
    """The services every runtime runs."""
    return [
        Rescuer(),
        Pruner(),
        Reaper(),
        Promoter(),
        Scheduler(),
        CallbackSweeper(),
        QueueGauges(),
    ]


__all__ = [
    "CallbackSweeper",
    "MaintenanceContext",
    "MaintenanceGroup",
    "Promoter",
    "Pruner",
    "QueueGauges",
    "Reaper",
    "Rescuer",
    "Scheduler",
    "Service",
    "builtin_services",
]
