"""parse.py: pure functions over HTML bytes."""

from __future__ import annotations

import pytest

from brains_jobs_web_scraping.parse import (
    normalise_whitespace,
    parse_page,
    validate_selector,
)

DOC = b"""<!doctype html><html><head><title> A   title </title>
<style>p { color: red }</style><script>var s = 1;</script></head>
<body>
<nav>menu <a href="/nav">nav</a></nav>
<main><h1>Heading</h1><p>Some <b>bold</b>text, <i>more</i>.</p>
<script>hidden()</script><!-- a comment -->
<ul><li>one</li><li>two</li></ul>
<table><tr><td>a</td><td>b</td></tr></table>
<span class="price">  9.99 </span>
<script type="application/ld+json">{"@type": "Thing"}</script>
<a href="rel/path?q=1#f">r</a><a href="https://other.example/x">o</a>
<a href="rel/path?q=1">dup</a><a href="mailto:x@y">m</a><a href="javascript:go()">j</a>
<a href="">empty</a><a href="http://[::1">broken</a><area href="/map">
</main><footer>foot</footer></body></html>"""


def test_title_text_links_and_fields() -> None:
    page = parse_page(
        DOC,
        "https://site.example/dir/index.html",
        {"price": ".price", "json": "script[type='application/ld+json']", "none": ".nope"},
    )
    assert page.title == "A title"
    assert page.text == "Heading\nSome boldtext, more.\none\ntwo\na b\n9.99 ro dupmj emptybroken"
    assert "hidden" not in page.text and "var s" not in page.text and "comment" not in page.text
    assert "menu" not in page.text and "foot" not in page.text  # <main> is the main text
    assert page.links == (
        "https://site.example/nav",
        "https://site.example/dir/rel/path?q=1",
        "https://other.example/x",
        "https://site.example/map",
    )
    assert page.fields == {"price": "9.99", "json": '{"@type": "Thing"}', "none": None}


def test_body_is_the_fallback_and_missing_title_is_none() -> None:
    page = parse_page(b"<p>just   text</p><div>and\n\n more</div>", "http://h/")
    assert page.title is None
    assert page.text == "just text\nand more"
    assert page.links == ()


def test_base_href_resolves_relative_links() -> None:
    doc = b'<base href="https://cdn.example/assets/"><a href="img/a.png">a</a>'
    assert parse_page(doc, "http://h/page").links == ("https://cdn.example/assets/img/a.png",)


def test_declared_encoding_is_used_and_bad_names_fall_back_to_detection() -> None:
    latin = "<title>Café</title>".encode("iso-8859-1")
    assert parse_page(latin, "http://h/", encoding="iso-8859-1").title == "Café"
    cyrillic = '<meta charset="windows-1251"><title>Привет</title>'.encode("windows-1251")
    assert parse_page(cyrillic, "http://h/", encoding="no-such-codec").title == "Привет"
    assert parse_page(cyrillic, "http://h/").title == "Привет"


def test_deep_nesting_does_not_recurse() -> None:
    doc = b"<div>" * 5000 + b"deep" + b"</div>" * 5000
    assert parse_page(doc, "http://h/").text == "deep"


def test_normalise_whitespace() -> None:
    assert normalise_whitespace("  a \t b\n\n\n  c  \r\n") == "a b\nc"


@pytest.mark.parametrize("selector", ["", "   ", "a[[[", "p:unknown-pseudo("])
def test_invalid_selectors_are_rejected(selector: str) -> None:
    with pytest.raises(ValueError, match="selector"):
        validate_selector(selector)


def test_valid_selector_passes_through() -> None:
    assert validate_selector("main > p.price:first-child") == "main > p.price:first-child"
