"""markdown.py: the subset parser."""

from __future__ import annotations

import pytest

from brains_jobs_pdf_export.markdown import (
    BulletList,
    Heading,
    Paragraph,
    Span,
    parse_blocks,
    parse_inline,
)


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("plain", [Span("plain")]),
        ("a **bold** b", [Span("a "), Span("bold", bold=True), Span(" b")]),
        ("*it* _it2_", [Span("it", italic=True), Span(" "), Span("it2", italic=True)]),
        (
            "**bo *both* ld**",
            [Span("bo ", bold=True), Span("both", bold=True, italic=True), Span(" ld", bold=True)],
        ),
        ("***both***", [Span("both", bold=True, italic=True)]),
        ("`a*b*` c", [Span("a*b*", code=True), Span(" c")]),
        ("2*3 = 6 and x * y * z", [Span("2*3 = 6 and x * y * z")]),
        ("un**closed and `open", [Span("un**closed and `open")]),
        (r"\*lit\* \`x\` \\", [Span("*lit* `x` \\")]),
        ("snake_case_name", [Span("snake_case_name")]),
        ("<b>not markup</b> & more", [Span("<b>not markup</b> & more")]),
    ],
)
def test_inline(text, spans) -> None:
    assert list(parse_inline(text)) == spans


def test_blocks() -> None:
    text = (
        "# Top\n"
        "First line\nsecond line\n"
        "- item **one**\n"
        "  continued\n"
        "* item two\n"
        "after the list\n"
        "\n"
        "## Sub ##\n"
        "### deeper\n"
        "\r\n"
        "last"
    )
    assert parse_blocks(text) == [
        Heading(1, (Span("Top"),)),
        Paragraph((Span("First line second line"),)),
        BulletList(
            ((Span("item "), Span("one", bold=True), Span(" continued")), (Span("item two"),))
        ),
        Paragraph((Span("after the list"),)),
        Heading(2, (Span("Sub"),)),
        Heading(2, (Span("deeper"),)),
        Paragraph((Span("last"),)),
    ]


def test_empty_and_hash_without_space() -> None:
    assert parse_blocks("") == []
    assert parse_blocks("   \n\n") == []
    assert parse_blocks("#hashtag") == [Paragraph((Span("#hashtag"),))]
