"""Artifacts on each store: databases that share one artifact folder keep apart."""

from __future__ import annotations

from pathlib import Path

import pytest

import brains_jobs as bj
from tests.support import jobs

pytestmark = pytest.mark.anyio


async def test_databases_sharing_an_artifact_folder_keep_apart(
    database_url: str, tmp_path: Path
) -> None:
    shared = str(tmp_path / "shared-artifacts")
    other_url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    options = {"jobs": jobs.ALL, "load_entrypoints": False, "artifacts": shared}
    async with bj.Runtime(database_url, **options) as a, bj.Runtime(other_url, **options) as b:
        assert a.store.store_id != b.store.store_id
        first = await a.enqueue(jobs.add, {"a": 1})
        second = await b.enqueue(jobs.add, {"a": 1})
        assert first.id == second.id == 1  # the same job id in two databases
        ref_a = await a.artifacts.put(first.id, b"from a", name="x.txt")
        ref_b = await b.artifacts.put(second.id, b"from b", name="x.txt")
        assert ref_a.key != ref_b.key
        await a.run_worker(burst=True, maintenance=False)
        assert await a.prune(0) == [first.id]
        assert await b.artifacts.get(ref_b) == b"from b"
        with pytest.raises(bj.ArtifactNotFound):
            await a.artifacts.get(ref_a)
        label = (Path(shared) / b.store.store_id / "DATABASE.txt").read_text()
        assert "other.db" in label
