"""Turn an HTML document into a title, readable text, absolute links and selected fields.

Pure functions over bytes and strings: no network, no runtime.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

# Content of these elements is never text a reader sees.
_SKIPPED_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "head"}
)
# Elements that start a new line of text; inline elements (a, b, span...) do not.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol",
        "option", "p", "pre", "section", "summary", "table", "tbody", "tfoot",
        "thead", "tr", "ul",
    }
)  # fmt: skip
# Where the main content is, most specific first; the body is the fallback.
_MAIN_SELECTORS = ("main", "[role=main]", "article")
_WHITESPACE = re.compile(r"\s+")
_LINK_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """What `parse_page` extracts from one document."""

    title: str | None
    text: str
    links: tuple[str, ...]
    fields: Mapping[str, str | None] = field(default_factory=dict)


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace inside each line to one space; drop empty lines."""
    lines = (_WHITESPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def validate_selector(selector: str) -> str:
    """Return `selector` unchanged if lexbor can parse it; raise `ValueError` if not."""
    if not selector.strip():
        raise ValueError("CSS selector must not be empty")
    try:
        LexborHTMLParser("<p></p>").css(selector)
    except SelectolaxError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None
    return selector


def make_parser(body: bytes, encoding: str | None = None) -> LexborHTMLParser:
    """Parse `body`; decode it with `encoding` when it names a codec, else detect it.

    Detection follows the HTML Standard (byte-order mark, then `<meta charset>`),
    falling back to UTF-8.
    """
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            pass  # a charset Python does not know: let the document's own <meta> decide
        else:
            return LexborHTMLParser(body.decode(encoding, errors="replace"))
    return LexborHTMLParser(body, encoding=True)


def parse_page(
    body: bytes,
    base_url: str,
    selectors: Mapping[str, str] | None = None,
    *,
    encoding: str | None = None,
) -> ParsedPage:
    """Extract the title, main text, absolute links and `selectors` fields of a document.

    `base_url` is the URL the document was fetched from (after redirects); a `<base href>`
    in the document takes precedence for resolving relative links. Each selector yields the
    whitespace-normalised text of its first match, or None when nothing matches.
    """
    tree = make_parser(body, encoding)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text().split()) if title_node is not None else ""
    fields = {
        name: (node_text(node) if (node := tree.css_first(selector)) is not None else None)
        for name, selector in (selectors or {}).items()
    }
    return ParsedPage(
        title=title or None,
        text=node_text(_main_node(tree)),
        links=tuple(extract_links(tree, base_url)),
        fields=fields,
    )


def node_text(node: LexborNode | None) -> str:
    """The readable text under `node`: block elements break lines, scripts and styles vanish.

    A node that is itself a skipped element (a `<script type="application/ld+json">`
    chosen by a selector, say) yields its own text.
    """
    if node is None:
        return ""
    if node.tag in _SKIPPED_TAGS:
        return normalise_whitespace(node.text())
    return normalise_whitespace("".join(_text_pieces(node)))


def _text_pieces(root: LexborNode) -> Iterator[str]:
    # Iterative depth-first walk: deeply nested documents must not hit the recursion limit.
    stack: list[LexborNode | str] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
            continue
        tag = item.tag
        if tag == "-text":
            # A newline in the source is just a space; only block elements break lines.
            yield _WHITESPACE.sub(" ", item.text_content or "")
            continue
        if tag in _SKIPPED_TAGS or tag == "-comment":
            continue
        block = tag in _BLOCK_TAGS
        if block:
            yield "\n"
            stack.append("\n")
        elif tag in {"td", "th"}:
            stack.append(" ")
        children = list(item.iter(include_text=True))
        stack.extend(reversed(children))


def _main_node(tree: LexborHTMLParser) -> LexborNode | None:
    for selector in _MAIN_SELECTORS:
        node = tree.css_first(selector)
        if node is not None:
            return node
    return tree.body or tree.root


def extract_links(tree: LexborHTMLParser, base_url: str) -> Iterator[str]:
    """Absolute http(s) URLs of the document's `<a href>`/`<area href>`, fragments dropped.

    Each URL appears once, in document order.
    """
    base_node = tree.css_first("base[href]")
    base = base_url
    if base_node is not None:
        base = urljoin(base_url, (base_node.attributes.get("href") or "").strip())
    seen: set[str] = set()
    for node in tree.css("a[href], area[href]"):
        href = (node.attributes.get("href") or "").strip()
        if not href:
            continue
        try:
            absolute, _fragment = urldefrag(urljoin(base, href))
            parts = urlsplit(absolute)
        except ValueError:  # e.g. an invalid IPv6 literal: not a link anyone can follow
            continue
        if parts.scheme not in _LINK_SCHEMES or not parts.netloc:
            continue
        if absolute not in seen:
            seen.add(absolute)
            yield absolute
