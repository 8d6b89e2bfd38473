"""brains-jobs plugin for the `image-generation` job type.

The job definition and hook live in `brains_jobs_image_generation.plugin` (the entry
point); `render` (the local Pillow renderer) and `backends` work without the runtime.
"""

from __future__ import annotations

from .backends import ImageBackend as ImageBackend
from .backends import LocalBackend as LocalBackend
from .backends import OpenAIImagesBackend as OpenAIImagesBackend
from .backends import backend_for as backend_for
from .errors import ImageGenerationError as ImageGenerationError
from .errors import PermanentImageError as PermanentImageError
from .errors import RetryableImageError as RetryableImageError
from .models import ImageRequest as ImageRequest
from .models import ImageResult as ImageResult
from .render import GeneratedImage as GeneratedImage
from .render import ImageSpec as ImageSpec

__all__ = [
    "GeneratedImage",
    "ImageBackend",
    "ImageGenerationError",
    "ImageRequest",
    "ImageResult",
    "ImageSpec",
    "LocalBackend",
    "OpenAIImagesBackend",
    "PermanentImageError",
    "RetryableImageError",
    "backend_for",
]
