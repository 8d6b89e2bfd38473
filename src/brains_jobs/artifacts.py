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
    """Keeps artifact bytes under keys.

    Keys start with the `namespace` of the job database (its store id, set by the
    runtime), then the owning job's id: databases that share one artifact store never
    see, or delete, each other's artifacts.
    """

    #: The job database's own name; `label` says in words which database it is.
    namespace: str = "default"
    label: str = ""

    def bind(self, namespace: str, label: str) -> None:
        """Keep this store's artifacts under `namespace` (the job database's store id)."""
        self.namespace = namespace
        self.label = label

    @abc.abstractmethod
    async def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key`."""

    @abc.abstractmethod
    async def read(self, key: str) -> bytes:
        """The bytes under `key`, or `ArtifactNotFound`."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every artifact whose key starts with `prefix/`; return how many."""

    async def delete_job(self, job_id: int) -> int:
        """Remove every artifact of job `job_id`; return how many were removed."""
        return await self.delete_prefix(f"{self.namespace}/{job_id}")

    async def put(
        self, job_id: int, data: bytes, *, name: str, content_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Store `data` for job `job_id` and return its reference."""
        safe = _SAFE.sub("_", name).strip("._") or "artifact"
        key = f"{self.namespace}/{job_id}/{uuid.uuid4().hex[:12]}-{safe}"
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
    """Artifacts as files under one directory: a folder per job database (with a
    `DATABASE.txt` saying which), and in it a folder per job.
    """

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
        marker = anyio.Path(self.root / self.namespace / "DATABASE.txt")
        if self.label and key.startswith(f"{self.namespace}/") and not await marker.exists():
            await marker.write_text(f"Artifacts of the brains-jobs database {self.label}\n")
        tmp = path.with_name(path.name + ".part")
        await tmp.write_bytes(data)
        await tmp.rename(path)

    def path(self, ref: ArtifactRef | str) -> Path:
        """The file that holds artifact `ref` (a reference or a key)."""
        return self._path(ref.key if isinstance(ref, ArtifactRef) else ref)

    async def read(self, key: str) -> bytes:
        try:
            return await anyio.Path(self._path(key)).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(f"no artifact {key!r} in {self.root}") from None

    async def delete_prefix(self, prefix: str) -> int:
        folder = anyio.Path(self._path(prefix))
        if not await folder.exists():
            return 0
        removed = 0
        async for entry in folder.iterdir():
            await entry.unlink()
            removed += 1
        await folder.rmdir()
        return removed
