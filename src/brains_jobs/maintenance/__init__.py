"""Background services of a database: one module per service, run by a group, the
leader-only ones in one process at a time.

- `rescuer`: jobs whose lease expired go back to work (every process).
- `pruner`: finished jobs past their retention are deleted (leader).
- `reaper`: silent workers leave the registry; unserved job types are reported (leader).
- `promoter`: waiting jobs that a resolution missed are settled (leader).
"""

from .promoter import Promoter as Promoter
from .pruner import Pruner as Pruner
from .reaper import Reaper as Reaper
from .rescuer import Rescuer as Rescuer
from .service import MaintenanceContext as MaintenanceContext
from .service import MaintenanceGroup as MaintenanceGroup
from .service import Service as Service


def builtin_services() -> list[Service]:
    """The services every runtime runs."""
    return [Rescuer(), Pruner(), Reaper(), Promoter()]


__all__ = [
    "MaintenanceContext",
    "MaintenanceGroup",
    "Promoter",
    "Pruner",
    "Reaper",
    "Rescuer",
    "Service",
    "builtin_services",
]
