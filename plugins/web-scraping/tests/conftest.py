"""A real HTTP server on 127.0.0.1 serving the fixture site, one per test that asks."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROBOTS_TXT = """\
User-agent: *
Disallow: /private

User-agent: grumpy-bot
Disallow: /
"""

PAGE_HTML = """\
<!doctype html>
<html>
<head>
  <title>  Fixture
     Page </title>
  <style>body { color: red; }</style>
  <script>var hidden = "script text";</script>
</head>
<body>
  <nav><a href="/about">About</a> <a href="contact.html">Contact</a></nav>
  <main>
    <h1>Hello   World</h1>
    <p>First <b>bold</b>word and
       a line break<br>after it.</p>
    <script>document.write("also hidden");</script>
    <ul><li>one</li><li>two</li></ul>
    <table><tr><td>cell a</td><td>cell b</td></tr></table>
    <p class="price"> 42.00   EUR </p>
    <p id="author">Ada <i>Lovelace</i></p>
    <a href="https://example.org/x#frag">external</a>
    <a href="#top">top</a>
    <a href="mailto:someone@example.org">mail</a>
    <a href="javascript:void(0)">js</a>
    <a href="/about">About again</a>
    <a href="//cdn.example.net/lib">cdn</a>
    <noscript>enable js</noscript>
  </main>
  <footer>footer text</footer>
</body>
</html>
"""


class Site:
    """A ThreadingHTTPServer in a thread; `hits` counts requests per path."""

    def __init__(self, robots: str | int) -> None:
        self.robots = robots
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # lets /slow answer at teardown
        self.offsite = ""  # where /offsite redirects to (another site's URL)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

            def do_GET(self) -> None:
                site.hits[self.path] += 1
                route = site.routes.get(self.path)
                if route is None:
                    self._send(404, "text/html", b"<h1>not found</h1>")
                else:
                    route(self)

            def _send(self, status: int, ctype: str, body: bytes, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client hung up early (it refused a huge body, say)

        self.handler = Handler
        self.routes: dict[str, Callable[[Handler], None]] = {
            "/robots.txt": self._robots,
            "/page": lambda h: h._send(200, "text/html; charset=utf-8", PAGE_HTML.encode()),
            "/private/page": lambda h: h._send(200, "text/html", b"<p>secret</p>"),
            "/redirect": lambda h: h._send(302, "text/html", b"", Location="/redirect2"),
            "/redirect2": lambda h: h._send(301, "text/html", b"", Location=self.url("/page")),
            "/redirect-loop": lambda h: h._send(302, "text/html", b"", Location="/redirect-loop"),
            "/redirect-private": lambda h: h._send(302, "text/html", b"", Location="/private/page"),
            "/offsite": lambda h: h._send(302, "text/html", b"", Location=self.offsite),
            "/redirect-ftp": lambda h: h._send(302, "text/html", b"", Location="ftp://x/y"),
            "/error": lambda h: h._send(500, "text/html", b"<h1>boom</h1>"),
            "/unavailable": lambda h: h._send(503, "text/html", b"down", Retry_After="1"),
            "/gone": lambda h: h._send(410, "text/html", b"gone"),
            "/image.png": lambda h: h._send(200, "image/png", b"\x89PNG\r\n\x1a\n"),
            "/latin1": lambda h: h._send(
                200,
                "text/html; charset=iso-8859-1",
                "<title>Café</title><p>déjà vu</p>".encode("iso-8859-1"),
            ),
            "/meta-charset": lambda h: h._send(
                200,
                "text/html",
                '<meta charset="windows-1251"><title>Привет</title>'.encode("windows-1251"),
            ),
            "/slow": self._slow,
            "/huge": lambda h: h._send(200, "text/html", b"<p>" + b"x" * (6 * 1024 * 1024)),
            "/huge-stream": self._huge_stream,
            "/reset": self._reset,
            "/flaky": self._flaky,
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps shutdown() (and so each test's teardown) quick.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def _robots(self, h) -> None:
        if isinstance(self.robots, int):
            h._send(self.robots, "text/plain", b"")
        else:
            h._send(200, "text/plain", self.robots.encode())

    def _slow(self, h) -> None:
        self.release.wait(5)
        try:
            h._send(200, "text/html", b"<title>late</title>")
        except OSError:
            pass  # the client gave up long ago

    def _huge_stream(self, h) -> None:
        # No Content-Length: the client only learns the size by reading.
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.end_headers()
        chunk = b"<p>" + b"y" * 65533
        try:
            for _ in range(200):  # 12.5 MiB if nobody stops reading
                h.wfile.write(chunk)
        except OSError:
            pass  # expected: the client hangs up at its limit

    def _reset(self, h) -> None:
        h.close_connection = True  # hang up without a status line

    def _flaky(self, h) -> None:
        if self.hits["/flaky"] == 1:
            h._send(503, "text/html", b"warming up")
        else:
            h._send(200, "text/html", b"<title>Flaky</title><p>second time lucky</p>")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def site_factory() -> Iterator[Callable[..., Site]]:
    """Start a fixture site; `robots` is robots.txt text, or a status code to answer with."""
    sites: list[Site] = []

    def make(robots: str | int = ROBOTS_TXT) -> Site:
        site = Site(robots)
        site.start()
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop()


@pytest.fixture
def site(site_factory: Callable[..., Site]) -> Site:
    return site_factory()
