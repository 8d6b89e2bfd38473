"""render.py: real PDFs, read back with pypdf."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from brains_jobs_pdf_export.errors import UnreadableImageError
from brains_jobs_pdf_export.markdown import parse_inline
from brains_jobs_pdf_export.render import PdfSection, inline_markup, prepare_image, render_pdf

BODY = """\
Intro paragraph with **bold words** and *slanted words* and `inline_code()`.

# Details

- first bullet
- second bullet with <angle> & ampersand

## Smaller

Closing words.
"""


def read(data: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(data))


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def test_text_headings_and_bullets_are_in_the_pdf() -> None:
    pdf = render_pdf("Quarterly Report", [PdfSection("Overview", BODY)], "A4")
    reader = read(pdf.data)
    assert pdf.pages == len(reader.pages) == 1
    text = text_of(reader)
    for expected in (
        "Quarterly Report",
        "Overview",
        "bold words",
        "slanted words",
        "inline_code()",
        "Details",
        "first bullet",
        "second bullet with <angle> & ampersand",
        "Smaller",
        "Closing words.",
    ):
        assert expected in text
    assert "**" not in text and "`" not in text and "# Details" not in text
    assert reader.metadata is not None and reader.metadata.title == "Quarterly Report"
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(float(width)), round(float(height))) == (595, 842)  # A4 in points


def test_fonts_follow_the_markup() -> None:
    pdf = render_pdf("T", [PdfSection("S", BODY)])
    fonts = read(pdf.data).pages[0]["/Resources"]["/Font"]
    names = {str(f.get_object()["/BaseFont"]) for f in fonts.values()}
    assert {"/Helvetica-Bold", "/Helvetica-Oblique", "/Courier"} <= names


def test_long_document_spans_pages_and_is_deterministic() -> None:
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20
    sections = [PdfSection(f"Chapter {i}", f"{paragraph}\n\n{paragraph}") for i in range(12)]
    pdf = render_pdf("Long", sections, "letter")
    reader = read(pdf.data)
    assert pdf.pages == len(reader.pages) >= 4
    assert "Chapter 11" in reader.pages[-1].extract_text()
    assert (
        round(float(reader.pages[0].mediabox.width)),
        round(float(reader.pages[0].mediabox.height)),
    ) == (612, 792)
    assert render_pdf("Long", sections, "letter").data == pdf.data
    assert pdf.sha256 == render_pdf("Long", sections, "letter").sha256


def test_images_are_embedded(make_image) -> None:
    images = [
        make_image("PNG", 40, 30),
        make_image("JPEG", 3000, 200),  # wider than the page: scaled down
        make_image("WEBP", 20, 20),  # converted to PNG
        make_image("PNG", 30, 30, mode="RGBA"),
    ]
    pdf = render_pdf(
        "Pictures", [PdfSection("One", "text", images[:2]), PdfSection("Two", "", images[2:])]
    )
    reader = read(pdf.data)
    assert sum(len(page.images) for page in reader.pages) == 4


def test_unreadable_image_is_an_error() -> None:
    with pytest.raises(UnreadableImageError, match="not a readable image"):
        render_pdf("T", [PdfSection("S", "x", [b"definitely not an image"])])


def test_prepare_image_keeps_png_and_jpeg(make_image) -> None:
    png = make_image("PNG", 5, 7)
    assert prepare_image(png) == (png, 5, 7)
    converted, w, h = prepare_image(make_image("GIF", 9, 4, mode="P"))
    assert converted.startswith(b"\x89PNG") and (w, h) == (9, 4)


def test_inline_markup_escapes_and_nests() -> None:
    assert inline_markup(parse_inline("a < **b & *c*** `<d>`")) == (
        "a &lt; <b>b &amp; </b><b><i>c</i></b> "
        '<font face="Courier" backColor="#f0f0f0">&lt;d&gt;</font>'
    )
