"""Errors of the PDF export domain.

    PdfExportError
    └── UnreadableImageError   an image artifact is not a PNG, JPEG, WebP or GIF image

Both are permanent: the same input fails the same way. The job handler in `plugin.py`
turns them into `brains_jobs.PermanentError`.
"""

from __future__ import annotations


class PdfExportError(Exception):
    """The document cannot be rendered from this input."""


class UnreadableImageError(PdfExportError):
    """An image to embed could not be decoded."""
