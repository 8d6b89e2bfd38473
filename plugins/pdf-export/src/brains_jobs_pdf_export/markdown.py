"""The small markdown subset the PDF export understands, parsed into plain blocks.

Blocks are separated by blank lines:

- `# text` and `## text` are subheadings (`###` and deeper count as `##`);
- lines starting with `- ` (or `* `) are bullet items; an indented line continues the item;
- anything else is a paragraph; its lines are joined with spaces.

Inline: `**bold**`, `*italic*` (or `_italic_`), `` `code` `` (taken literally), and a
backslash before `*`, `_`, `` ` `` or `\\` to mean the character itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s{0,3}[-*]\s+(.*)$")
_ESCAPABLE = frozenset("\\*_`")


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text with one set of inline styles."""

    text: str
    bold: bool = False
    italic: bool = False
    code: bool = False


Inline = tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A paragraph of inline text."""

    spans: Inline


@dataclass(frozen=True, slots=True)
class Heading:
    """A subheading; level 1 for `#`, 2 for `##` and deeper."""

    level: int
    spans: Inline


@dataclass(frozen=True, slots=True)
class BulletList:
    """Consecutive bullet items."""

    items: tuple[Inline, ...]


Block = Paragraph | Heading | BulletList


def parse_blocks(text: str) -> list[Block]:
    """Split markdown `text` into headings, paragraphs and bullet lists, in order."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    items: list[list[str]] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Paragraph(parse_inline(" ".join(paragraph))))
            paragraph.clear()
        if items:
            blocks.append(BulletList(tuple(parse_inline(" ".join(i)) for i in items)))
            items.clear()

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            flush()
        elif heading := _HEADING.match(line):
            flush()
            level = 1 if len(heading.group(1)) == 1 else 2
            blocks.append(Heading(level, parse_inline(heading.group(2))))
        elif bullet := _BULLET.match(line):
            if paragraph:
                flush()
            items.append([bullet.group(1).strip()])
        elif items and raw[:1].isspace():
            items[-1].append(line.strip())  # an indented line continues the item
        else:
            if items:
                flush()
            paragraph.append(line.strip())
    flush()
    return blocks


def parse_inline(text: str) -> Inline:
    """Split `text` into spans by `**bold**`, `*italic*`/`_italic_` and `` `code` ``.

    A marker with no closing partner is kept as a literal character.
    """
    spans: list[Span] = []
    buffer: list[str] = []
    bold = italic = False
    italic_marker = ""
    i, n = 0, len(text)

    def emit(**style: bool) -> None:
        if buffer:
            spans.append(Span("".join(buffer), bold=bold, italic=italic, **style))
            buffer.clear()

    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in _ESCAPABLE:
            buffer.append(text[i + 1])
            i += 2
        elif char == "`":
            end = text.find("`", i + 1)
            if end == -1:
                buffer.append(char)
                i += 1
            else:
                emit()
                buffer.append(text[i + 1 : end])
                emit(code=True)
                i = end + 1
        elif text.startswith("**", i) and (bold or _closes_later(text, i + 2, "**")):
            emit()
            bold = not bold
            i += 2
        elif char in "*_" and (
            (italic and char == italic_marker)
            or (not italic and _opens_italic(text, i) and _closes_later(text, i + 1, char))
        ):
            emit()
            italic = not italic
            italic_marker = char if italic else ""
            i += 1
        else:
            buffer.append(char)
            i += 1
    emit()
    return tuple(_merge(spans))


def _opens_italic(text: str, i: int) -> bool:
    # snake_case_names stay literal: `_` only opens at the start of a word.
    return text[i] == "*" or i == 0 or not text[i - 1].isalnum()


def _closes_later(text: str, start: int, marker: str) -> bool:
    """An opening marker counts if text follows it directly and a partner comes later."""
    if start >= len(text) or text[start].isspace():
        return False
    end = text.find(marker, start + 1)
    while end != -1:
        after = text[end + len(marker) : end + len(marker) + 1]
        if (
            not text[end - 1].isspace()
            and (marker != "*" or not text.startswith("**", end))
            and (marker != "_" or not after.isalnum())
        ):
            return True
        end = text.find(marker, end + len(marker))
    return False


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in spans:
        if (
            merged
            and (prev := merged[-1]).bold == span.bold
            and prev.italic == span.italic
            and (prev.code == span.code)
        ):
            merged[-1] = Span(prev.text + span.text, span.bold, span.italic, span.code)
        else:
            merged.append(span)
    return merged
