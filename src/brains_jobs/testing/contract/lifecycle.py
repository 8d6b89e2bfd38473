"""The lifecycle role: schema state and the store's name."""

from __future__ import annotations

from ...store import Store
from ._support import enqueue, get, job


class LifecycleContract:
    """`Lifecycle`: migrations and `store_id`."""

    async def test_the_schema_is_current(self, store: Store) -> None:
        """An opened store has no pending migrations, and migrating again applies none."""
        assert await store.pending_migrations() == []
        assert await store.migrate() == []
        assert store.migration_sql().strip()

    async def test_store_id_is_stable(self, store: Store) -> None:
        """`store_id` is a non-empty name that stays the same, across a reopen too, and
        the data survives the reopen.
        """
        name = store.store_id
        assert isinstance(name, str) and name
        (job_id,) = await enqueue(store, job(1))
        assert store.store_id == name
        await store.close()
        await store.open()
        assert store.store_id == name
        assert (await get(store, job_id)).input == {"n": 1}
        assert store.describe()
