"""The `pdf-export` job type and the hook that registers it (the entry point module)."""

from __future__ import annotations

import hashlib
import re
import threading

import anyio.to_thread
import brains_jobs as bj
from brains_jobs.artifacts import ArtifactNotFound

from .errors import PdfExportError
from .models import PdfRequest, PdfResult
from .render import PdfSection, RenderedPdf, render_pdf

__all__ = ["brains_jobs_register_jobs", "export_pdf"]

# reportlab keeps module-level state (font and image caches); one render at a time.
_RENDER_LOCK = threading.Lock()


@bj.job("pdf-export", max_attempts=3, backoff=2.0, timeout=300.0)
async def export_pdf(ctx: bj.JobContext, req: PdfRequest) -> PdfResult:
    """Lay out the sections (and their image artifacts) as a PDF; store it as an artifact.

    A missing or corrupted image artifact, or an image that cannot be decoded, fails the
    job at once (`PermanentError`).
    """
    refs = [ref for section in req.sections for ref in section.images]
    await ctx.progress(0.1, f"reading {len(refs)} image(s)")
    images = {ref.key: await _read_image(ctx, ref) for ref in refs}
    sections = [
        PdfSection(s.heading, s.body, tuple(images[ref.key] for ref in s.images))
        for s in req.sections
    ]
    await ctx.progress(0.4, f"laying out {len(sections)} section(s)")
    try:
        pdf = await anyio.to_thread.run_sync(_render, req, sections)
    except PdfExportError as exc:
        raise bj.PermanentError(str(exc)) from exc
    await ctx.progress(0.9, f"rendered {pdf.pages} page(s), {len(pdf.data)} bytes")
    ref = await ctx.artifacts.put(
        pdf.data, name=pdf_name(req.title), content_type="application/pdf"
    )
    ctx.logger.info("stored %s (%d pages, %d bytes) as %s", ref.name, pdf.pages, ref.size, ref.key)
    return PdfResult(artifact=ref, pages=pdf.pages, bytes=len(pdf.data), sha256=pdf.sha256)


def pdf_name(title: str) -> str:
    """A file name from the title's first words."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:64].rstrip("-")
    return f"{slug or 'document'}.pdf"


async def _read_image(ctx: bj.JobContext, ref: bj.ArtifactRef) -> bytes:
    try:
        data = await ctx.artifacts.get(ref)
    except ArtifactNotFound as exc:
        raise bj.PermanentError(f"image artifact {ref.key!r} ({ref.name}) does not exist") from exc
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise bj.PermanentError(
            f"image artifact {ref.key!r} ({ref.name}) does not match its sha256: corrupted"
        )
    return data


def _render(req: PdfRequest, sections: list[PdfSection]) -> RenderedPdf:
    with _RENDER_LOCK:
        return render_pdf(req.title, sections, req.page_size)


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    """Register the `pdf-export` job type."""
    register(export_pdf)
