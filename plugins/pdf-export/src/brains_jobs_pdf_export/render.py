"""Lay out a titled document of markdown sections and images as a PDF with reportlab.

Pure: bytes in, bytes out. The same input gives the same bytes (reportlab's invariant
mode fixes the creation date and document id).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal
from xml.sax.saxutils import escape

from PIL import Image, UnidentifiedImageError
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, letter
from reportlab.lib.styles import ParagraphStyle, StyleSheet1, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    ListFlowable,
    ListItem,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)
from reportlab.platypus import Image as PdfImage
from reportlab.platypus.doctemplate import LayoutError

from . import markdown
from .errors import PdfExportError, UnreadableImageError

PageSize = Literal["A4", "letter"]
PAGE_SIZES: Final[dict[PageSize, tuple[float, float]]] = {"A4": A4, "letter": letter}
MARGIN: Final = 20 * mm
MAX_IMAGE_HEIGHT_SHARE: Final = 0.5
"""An image takes at most this share of the frame's height, so text can share its page."""
_EMBEDDABLE: Final = frozenset({"PNG", "JPEG"})


@dataclass(frozen=True, slots=True)
class PdfSection:
    """A section: heading, markdown body, and encoded images shown after the body."""

    heading: str
    body: str
    images: Sequence[bytes] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    """The PDF's bytes and how many pages it has."""

    data: bytes
    pages: int

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of `data`."""
        return hashlib.sha256(self.data).hexdigest()


def render_pdf(
    title: str, sections: Sequence[PdfSection], page_size: PageSize = "A4"
) -> RenderedPdf:
    """Render the document; raise `PdfExportError` if it cannot be laid out."""
    pagesize = PAGE_SIZES[page_size]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author="brains-jobs",
        creator="brains-jobs-pdf-export",
        invariant=1,
    )
    styles = _styles()
    story: list[Flowable] = [Paragraph(escape(title), styles["Title"])]
    for section in sections:
        story.extend(_section_flowables(section, styles, doc.width, doc.height))
    pages = 0

    def on_page(canvas: Canvas, _doc: SimpleDocTemplate) -> None:
        nonlocal pages
        pages += 1
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(colors.grey)
        canvas.drawCentredString(pagesize[0] / 2, MARGIN / 2, f"{pages}")
        canvas.restoreState()

    try:
        doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    except LayoutError as exc:
        raise PdfExportError(f"cannot lay out the document: {exc}") from exc
    return RenderedPdf(data=buffer.getvalue(), pages=pages)


def inline_markup(spans: markdown.Inline) -> str:
    """Spans as reportlab paragraph markup: text escaped, styles as `<b>`, `<i>`, `<font>`."""
    parts = []
    for span in spans:
        text = escape(span.text)
        if span.code:
            text = f'<font face="Courier" backColor="#f0f0f0">{text}</font>'
        if span.italic:
            text = f"<i>{text}</i>"
        if span.bold:
            text = f"<b>{text}</b>"
        parts.append(text)
    return "".join(parts)


def prepare_image(data: bytes) -> tuple[bytes, int, int]:
    """Check an image and return bytes reportlab embeds (PNG or JPEG) and its pixel size.

    Other formats Pillow reads (WebP, GIF...) are converted to PNG.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format in _EMBEDDABLE:
                return data, image.width, image.height
            converted = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            out = io.BytesIO()
            converted.save(out, "PNG")
            return out.getvalue(), image.width, image.height
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(f"not a readable image: {exc}") from exc


def _styles() -> StyleSheet1:
    styles = getSampleStyleSheet()
    styles.add(ParagraphStyle("Bullet_", parent=styles["BodyText"], spaceBefore=0, spaceAfter=2))
    return styles


def _section_flowables(
    section: PdfSection, styles: StyleSheet1, frame_width: float, frame_height: float
) -> list[Flowable]:
    heading = Paragraph(escape(section.heading), styles["Heading1"])
    body: list[Flowable] = []
    for block in markdown.parse_blocks(section.body):
        if isinstance(block, markdown.Heading):
            style = styles["Heading2" if block.level == 1 else "Heading3"]
            body.append(Paragraph(inline_markup(block.spans), style))
        elif isinstance(block, markdown.Paragraph):
            body.append(Paragraph(inline_markup(block.spans), styles["BodyText"]))
        else:
            items = [
                ListItem(Paragraph(inline_markup(item), styles["Bullet_"])) for item in block.items
            ]
            # types-reportlab says Flowables only; ListFlowable takes ListItems too.
            bullets = ListFlowable(
                items,  # type: ignore[arg-type]
                bulletType="bullet",
                start="\u2022",
                leftIndent=12,
            )
            body.append(bullets)
    for data in section.images:
        body.append(Spacer(1, 4 * mm))
        body.append(_image(data, frame_width, frame_height * MAX_IMAGE_HEIGHT_SHARE))
    # A heading never ends a page alone: keep it with what follows it.
    first = body[:1]
    return [KeepTogether([heading, *first]), *body[1:]]


def _image(data: bytes, max_width: float, max_height: float) -> PdfImage:
    embeddable, width, height = prepare_image(data)
    scale = min(max_width / width, max_height / height, 1.0)
    return PdfImage(io.BytesIO(embeddable), width=width * scale, height=height * scale)
