"""The store contract: the tests every job store must pass.

A store package proves itself by subclassing `StoreContract` in one of its test modules
and giving it a `store` fixture, an opened store with its schema over an empty
database (a fresh one per test):

```python
import pytest

from brains_jobs.testing.contract import StoreContract


class TestMyStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path):  # an opened, empty store with its schema
        store = MyStore(...)
        await store.open()
        yield store
        await store.close()
```

The tests run on anyio (`pytestmark = pytest.mark.anyio`), on whichever backend the
package's `anyio_backend` fixture names (anyio's own default: asyncio). Each test states
one guarantee of `brains_jobs.store.roles` (and of the audit trail that
`brains_jobs.store.audit` describes) in its name and docstring, and checks it through
the store's interface alone. The roles are also available one by one, as mixins
(`ProducerContract`, `WorkQueueContract`, `FinishContract`, `AdminContract`,
`EventLogContract`, `MaintenanceContract`, `LifecycleContract`, `TemplatesContract`,
`OperationsContract`)
for a store that plays only some of them; a class built from those alone needs its own
`pytestmark = pytest.mark.anyio`.

Timing tests use leases of a fraction of a second: the whole suite takes seconds.
"""

from __future__ import annotations

import pytest

from .admin import AdminContract
from .events import EventLogContract
from .finish import FinishContract
from .lifecycle import LifecycleContract
from .maintenance import MaintenanceContract
from .operations import OperationsContract
from .producer import ProducerContract
from .queue import WorkQueueContract
from .templates import TemplatesContract


# pytest collects the tests of the last base first: this order runs them from enqueueing on.
class StoreContract(
    OperationsContract,
    TemplatesContract,
    LifecycleContract,
    MaintenanceContract,
    EventLogContract,
    AdminContract,
    FinishContract,
    WorkQueueContract,
    ProducerContract,
):
    """Every guarantee of `brains_jobs.store.Store`; subclass it with a `store` fixture."""

    pytestmark = pytest.mark.anyio


__all__ = [
    "AdminContract",
    "EventLogContract",
    "FinishContract",
    "LifecycleContract",
    "MaintenanceContract",
    "OperationsContract",
    "ProducerContract",
    "StoreContract",
    "TemplatesContract",
    "WorkQueueContract",
]
