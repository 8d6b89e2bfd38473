"""Input and output models of the `image-generation` job type."""

from __future__ import annotations

from brains_jobs import ArtifactRef
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .backends import BackendName
from .render import MAX_SIDE, MIN_SIDE, ImageFormat, Style


class ImageRequest(BaseModel):
    """What to draw, how big, in which format, and with which backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, max_length=4000)
    width: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(default=512, ge=MIN_SIDE, le=MAX_SIDE)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    format: ImageFormat = "png"
    style: Style = "abstract"
    backend: BackendName | None = Field(
        default=None,
        description="None: the BRAINS_JOBS_IMAGES_BACKEND environment variable, else 'local'.",
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value


class ImageResult(BaseModel):
    """Where the image was stored and what it is; the bytes live in the artifact."""

    artifact: ArtifactRef
    format: ImageFormat
    width: int
    height: int
    bytes: int = Field(description="Size of the encoded image.")
    sha256: str
    backend: BackendName
