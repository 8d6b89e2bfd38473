"""The fixture site over real HTTP on 127.0.0.1."""

from __future__ import annotations

import anyio
import pytest

from brains_jobs_demo.site import SITE_PARAGRAPHS, SITE_TITLE, fixture_site

pytestmark = pytest.mark.anyio


async def request(base: str, method: str, path: str) -> tuple[str, bytes]:
    """The status line and body of one HTTP/1.1 request."""
    host, port = base.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        try:
            while True:
                data += await stream.receive()
        except anyio.EndOfStream:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), body


async def test_serves_the_article_and_robots_txt() -> None:
    async with fixture_site() as site:
        assert site.startswith("http://127.0.0.1:")
        status, page = await request(site, "GET", "/article")
        assert status == "HTTP/1.1 200 OK"
        text = page.decode()
        assert f"<title>{SITE_TITLE}</title>" in text
        assert all(f"<p>{p}</p>" in text for p in SITE_PARAGRAPHS)
        assert await request(site, "GET", "/robots.txt") == (
            "HTTP/1.1 200 OK",
            b"User-agent: *\nAllow: /\n",
        )
        assert await request(site, "GET", "/elsewhere") == ("HTTP/1.1 404 Not Found", b"not found")
        assert await request(site, "HEAD", "/article") == ("HTTP/1.1 200 OK", b"")


async def test_garbage_gets_no_answer_and_the_site_stops() -> None:
    async with fixture_site() as site:
        host, port = site.removeprefix("http://").split(":")
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(b"nonsense\r\n\r\n")
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()
        assert (await request(site, "GET", "/article"))[0] == "HTTP/1.1 200 OK"
    with pytest.raises(OSError):
        await anyio.connect_tcp(host, int(port))
