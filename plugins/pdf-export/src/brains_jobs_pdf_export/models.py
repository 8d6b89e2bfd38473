"""Input and output models of the `pdf-export` job type."""

from __future__ import annotations

from brains_jobs import ArtifactRef
from pydantic import BaseModel, ConfigDict, Field

from .render import PageSize


class Section(BaseModel):
    """One section: a heading, a markdown-subset body, and images shown after the body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heading: str = Field(min_length=1, max_length=500)
    body: str = Field(
        default="",
        max_length=200_000,
        description="Paragraphs, **bold**, *italic*, `code`, '- ' bullets, '#'/'##' subheadings.",
    )
    images: list[ArtifactRef] = Field(default_factory=list, max_length=20)


class PdfRequest(BaseModel):
    """A titled document of sections, and the paper it is laid out on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=500)
    sections: list[Section] = Field(min_length=1, max_length=500)
    page_size: PageSize = "A4"


class PdfResult(BaseModel):
    """Where the PDF was stored and what it is; the bytes live in the artifact."""

    artifact: ArtifactRef
    pages: int
    bytes: int = Field(description="Size of the PDF file.")
    sha256: str
