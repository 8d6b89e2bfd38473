"""The `image-generation` job type and the hook that registers it (the entry point module)."""

from __future__ import annotations

import os
import re
from typing import Final

import brains_jobs as bj

from .backends import BACKENDS, BackendName, backend_for
from .errors import PermanentImageError
from .models import ImageRequest, ImageResult
from .render import ImageSpec

__all__ = ["BACKEND_ENV", "brains_jobs_register_jobs", "generate_image"]

BACKEND_ENV: Final = "BRAINS_JOBS_IMAGES_BACKEND"
_EXTENSIONS: Final = {"png": "png", "jpeg": "jpg", "webp": "webp"}


@bj.job("image-generation", max_attempts=3, backoff=5.0, backoff_cap=120.0, timeout=300.0)
async def generate_image(ctx: bj.JobContext, req: ImageRequest) -> ImageResult:
    """Generate one image, store it as an artifact and return the reference.

    The backend is `req.backend`, else `BRAINS_JOBS_IMAGES_BACKEND`, else `local`.
    """
    try:
        name = req.backend or _backend_from_env()
        backend = backend_for(name)
        await ctx.progress(0.1, f"generating {req.width}x{req.height} {req.format} with {name}")
        spec = ImageSpec(req.prompt, req.width, req.height, req.seed, req.format, req.style)
        image = await backend.generate(spec)
    except PermanentImageError as exc:
        raise bj.PermanentError(str(exc)) from exc
    await ctx.progress(0.8, f"generated {image.width}x{image.height}, {len(image.data)} bytes")
    ref = await ctx.artifacts.put(
        image.data,
        name=artifact_name(req.prompt, req.seed, req.format),
        content_type=image.content_type,
    )
    ctx.logger.info("stored %s (%d bytes) as %s", ref.name, ref.size, ref.key)
    await ctx.progress(0.95, f"stored as artifact {ref.key}")
    return ImageResult(
        artifact=ref,
        format=image.format,
        width=image.width,
        height=image.height,
        bytes=len(image.data),
        sha256=image.sha256,
        backend=name,
    )


def artifact_name(prompt: str, seed: int, format: str) -> str:
    """A readable file name: the prompt's first words, the seed, the format's extension."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:48].rstrip("-") or "image"
    return f"{slug}-{seed}.{_EXTENSIONS.get(format, format)}"


def _backend_from_env() -> BackendName:
    value = os.environ.get(BACKEND_ENV, "").strip().lower() or "local"
    if value not in BACKENDS:
        raise PermanentImageError(
            f"{BACKEND_ENV}={value!r} names no backend; use one of {', '.join(BACKENDS)}"
        )
    return value


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    """Register the `image-generation` job type."""
    register(generate_image)
