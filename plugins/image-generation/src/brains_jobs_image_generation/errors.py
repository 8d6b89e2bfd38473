"""Errors of image generation, split by whether another attempt can help.

    ImageGenerationError
    ├── PermanentImageError   bad request (4xx), missing configuration, unreadable image
    └── RetryableImageError   timeouts, connection failures, 5xx, 429, garbled responses

The job handler in `plugin.py` turns a `PermanentImageError` into
`brains_jobs.PermanentError`; a `RetryableImageError` propagates and is retried.
"""

from __future__ import annotations


class ImageGenerationError(Exception):
    """Base class of every error the image-generation domain raises."""


class PermanentImageError(ImageGenerationError):
    """Generating this image again will fail the same way."""


class RetryableImageError(ImageGenerationError):
    """The failure may be transient: a later attempt can succeed."""
