"""Artifacts: binary outputs (images, documents) kept beside the job rows, not in them.

A handler writes bytes with `await ctx.artifacts.put(...)` and returns the `ArtifactRef`
in its output; a later job reads them back with `await ctx.artifacts.get(ref)`.
"""

from __future__ import annotations

import abc
import hashlib
import re
import uuid
from pathlib import Path

import anyio
from pydantic import BaseModel, ConfigDict

from .exceptions import BrainsJobsError, ConfigurationError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ArtifactNotFound(BrainsJobsError):
    """No artifact is stored under the requested key."""


class ArtifactRef(BaseModel):
    """Where an artifact is and what it holds; job outputs carry these, not the bytes."""

    model_config = ConfigDict(frozen=True)

    key: str
    name: str
    content_type: str
    size: int
    sha256: str


class ArtifactStore(abc.ABC):
    """Keeps artifact bytes under keys; keys start with the owning job's id."""

    @abc.abstractmethod
    async def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""

    @abc.abstractmethod
    async def read(self, key: str) -> bytes:
        """The bytes under `key`, or `ArtifactNotFound`."""

    @abc.abstractmethod
    async def delete_job(self, job_id: int) -> int:
        """Remove every artifact of job `job_id`; return how many were removed."""

    async def put(
        self, job_id: int, data: bytes, *, name: str, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Store `data` for job `job_id` and return its reference."""
        safe = _SAFE.sub("_", name).strip("._") or "artifact"
        key = f"{job_id}/{uuid.uuid4().hex[:12]}-{safe}"
        await self.write(key, data)
        return ArtifactRef(
            key=key,
            name=name,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    async def get(self, ref: ArtifactRef | str) -> bytes:
        """The bytes of `ref` (a reference or a key)."""
        return await self.read(ref.key if isinstance(ref, ArtifactRef) else ref)


class DirectoryArtifactStore(ArtifactStore):
    """Artifacts as files under one directory, one sub-directory per job."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ConfigurationError(f"artifact key {key!r} points outside {self.root}")
        return path

    async def write(self, key: str, data: bytes) -> None:
        path = anyio.Path(self._path(key))
        await path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        await tmp.write_bytes(data)
        await tmp.rename(path)

    async def read(self, key: str) -> bytes:
        try:
            return await anyio.Path(self._path(key)).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(f"no artifact {key!r} in {self.root}") from None

    async def delete_job(self, job_id: int) -> int:
        folder = anyio.Path(self.root / str(job_id))
        if not await folder.exists():
            return 0
        removed = 0
        async for entry in folder.iterdir():
            await entry.unlink()
            removed += 1
        await folder.rmdir()
        return removed
