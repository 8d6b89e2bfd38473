"""Job types for the dashboard's tests, loadable as a plugin:
`--plugin tests.web.dashboard_jobs`.

`render` stores an image and a PDF as artifacts; `steps` reports progress in steps.
"""

from __future__ import annotations

import struct
import zlib

import anyio
from pydantic import BaseModel, Field

import brains_jobs as bj


def png(width: int = 96, height: int = 48) -> bytes:
    """A small gradient, as a valid PNG."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 5, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


class Title(BaseModel):
    title: str = "report"


class Rendered(BaseModel):
    image: bj.ArtifactRef
    pdf: bj.ArtifactRef
    pages: int


@bj.job("render", max_attempts=1)
async def render(ctx: bj.JobContext, inp: Title) -> Rendered:
    """Store a chart and a report of `title` as artifacts."""
    image = await ctx.artifacts.put(png(), name=f"{inp.title}.png", content_type="image/png")
    pdf = await ctx.artifacts.put(PDF, name=f"{inp.title}.pdf", content_type="application/pdf")
    ctx.usage(pages=1)
    return Rendered(image=image, pdf=pdf, pages=1)


class Steps(BaseModel):
    steps: int = Field(5, ge=1, le=100)
    seconds: float = Field(2.0, ge=0, le=60)


class Done(BaseModel):
    steps: int


@bj.job("steps", max_attempts=1)
async def steps(ctx: bj.JobContext, inp: Steps) -> Done:
    """Report progress in `steps` even steps over `seconds`, logging each."""
    for i in range(inp.steps):
        await anyio.sleep(inp.seconds / inp.steps)
        ctx.logger.info("step %d of %d done", i + 1, inp.steps)
        await ctx.progress((i + 1) / inp.steps, f"step {i + 1}/{inp.steps}")
    return Done(steps=inp.steps)


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    register(render)
    register(steps)
