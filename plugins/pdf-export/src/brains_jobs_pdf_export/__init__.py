"""brains-jobs plugin for the `pdf-export` job type.

The job definition and hook live in `brains_jobs_pdf_export.plugin` (the entry point);
`markdown` (the body parser) and `render` (reportlab layout) work without the runtime.
"""

from __future__ import annotations

from .errors import PdfExportError as PdfExportError
from .errors import UnreadableImageError as UnreadableImageError
from .models import PdfRequest as PdfRequest
from .models import PdfResult as PdfResult
from .models import Section as Section
from .render import PdfSection as PdfSection
from .render import RenderedPdf as RenderedPdf
from .render import render_pdf as render_pdf

__all__ = [
    "PdfExportError",
    "PdfRequest",
    "PdfResult",
    "PdfSection",
    "RenderedPdf",
    "Section",
    "UnreadableImageError",
    "render_pdf",
]
