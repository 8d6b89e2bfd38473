"""fetch.py and robots.py against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from brains_jobs_web_scraping.errors import PermanentScrapeError, RetryableScrapeError
from brains_jobs_web_scraping.fetch import check_http_url, fetch_page
from brains_jobs_web_scraping.parse import parse_page
from brains_jobs_web_scraping.robots import RobotsGate

pytestmark = pytest.mark.anyio

UA = "test-scraper/1.0"
LIMIT = 1024 * 1024


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5, headers={"User-Agent": UA}) as c:
        yield c


async def test_normal_page(site, client) -> None:
    page = await fetch_page(
        client, site.url("/page"), max_bytes=LIMIT, robots=RobotsGate(client, UA)
    )
    assert page.status_code == 200
    assert page.final_url == site.url("/page")
    assert page.content_type == "text/html"
    assert page.encoding == "utf-8"
    assert page.body.startswith(b"<!doctype html>")
    parsed = parse_page(page.body, page.final_url, {"price": ".price"}, encoding=page.encoding)
    assert parsed.title == "Fixture Page"
    assert parsed.fields == {"price": "42.00 EUR"}
    assert site.url("/about") in parsed.links


async def test_redirects_are_followed_and_robots_fetched_once(site, client) -> None:
    gate = RobotsGate(client, UA)
    page = await fetch_page(client, site.url("/redirect"), max_bytes=LIMIT, robots=gate)
    assert page.url == site.url("/redirect")
    assert page.final_url == site.url("/page")
    assert [site.hits[p] for p in ("/redirect", "/redirect2", "/page")] == [1, 1, 1]
    assert site.hits["/robots.txt"] == 1  # three hops, one origin, one robots.txt


async def test_redirect_into_forbidden_path_is_permanent(site, client) -> None:
    gate = RobotsGate(client, UA)
    with pytest.raises(PermanentScrapeError, match=r"robots.txt .* forbids /private/page"):
        await fetch_page(client, site.url("/redirect-private"), max_bytes=LIMIT, robots=gate)
    assert site.hits["/private/page"] == 0


async def test_redirect_to_another_origin_checks_that_origins_robots(
    site, site_factory, client
) -> None:
    other = site_factory(robots="User-agent: *\nDisallow: /page\n")
    site.offsite = other.url("/page")
    gate = RobotsGate(client, UA)
    with pytest.raises(PermanentScrapeError, match=f"robots.txt of {other.base_url} forbids /page"):
        await fetch_page(client, site.url("/offsite"), max_bytes=LIMIT, robots=gate)
    assert (site.hits["/robots.txt"], other.hits["/robots.txt"]) == (1, 1)
    assert other.hits["/page"] == 0


async def test_redirect_loop_and_bad_scheme_are_permanent(site, client) -> None:
    with pytest.raises(PermanentScrapeError, match="more than 3 redirects"):
        await fetch_page(client, site.url("/redirect-loop"), max_bytes=LIMIT, max_redirects=3)
    assert site.hits["/redirect-loop"] == 4
    with pytest.raises(PermanentScrapeError, match="only http and https"):
        await fetch_page(client, site.url("/redirect-ftp"), max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("path", "message"), [("/missing", "404 Not Found"), ("/gone", "410 Gone")]
)
async def test_4xx_is_permanent(site, client, path, message) -> None:
    with pytest.raises(PermanentScrapeError, match=f"{message} for {site.url(path)}"):
        await fetch_page(client, site.url(path), max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("path", "message"),
    [("/error", "500 Internal Server Error"), ("/unavailable", "503 Service Unavailable")],
)
async def test_5xx_is_retryable(site, client, path, message) -> None:
    with pytest.raises(RetryableScrapeError, match=message):
        await fetch_page(client, site.url(path), max_bytes=LIMIT)


async def test_slow_response_times_out_retryably(site, client) -> None:
    with pytest.raises(RetryableScrapeError, match="timed out fetching"):
        await fetch_page(client, site.url("/slow"), max_bytes=LIMIT)


async def test_connection_refused_and_reset_are_retryable(site, client) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetryableScrapeError, match="could not fetch"):
        await fetch_page(client, f"http://127.0.0.1:{port}/", max_bytes=LIMIT)
    with pytest.raises(RetryableScrapeError, match=r"could not fetch .*/reset"):
        await fetch_page(client, site.url("/reset"), max_bytes=LIMIT)


@pytest.mark.parametrize("path", ["/huge", "/huge-stream"])  # with and without Content-Length
async def test_body_over_max_bytes_is_permanent(site, client, path) -> None:
    with pytest.raises(PermanentScrapeError, match=f"response larger than {LIMIT} bytes"):
        await fetch_page(client, site.url(path), max_bytes=LIMIT)


async def test_non_html_is_permanent(site, client) -> None:
    with pytest.raises(PermanentScrapeError, match="is image/png, not HTML"):
        await fetch_page(client, site.url("/image.png"), max_bytes=LIMIT)


async def test_charset_from_header(site, client) -> None:
    page = await fetch_page(client, site.url("/latin1"), max_bytes=LIMIT)
    assert page.encoding == "iso-8859-1"
    assert parse_page(page.body, page.final_url, encoding=page.encoding).text == "déjà vu"
    page = await fetch_page(client, site.url("/meta-charset"), max_bytes=LIMIT)
    assert page.encoding is None
    assert parse_page(page.body, page.final_url).title == "Привет"


async def test_robots_rules_per_user_agent(site, client) -> None:
    gate = RobotsGate(client, UA)
    assert await gate.allowed(site.url("/page"))
    assert not await gate.allowed(site.url("/private/page"))
    grumpy = RobotsGate(client, "grumpy-bot/2.0")
    assert not await grumpy.allowed(site.url("/page"))
    with pytest.raises(PermanentScrapeError, match=r"for user agent 'grumpy-bot/2\.0'"):
        await grumpy.check(site.url("/page"))


async def test_missing_robots_allows_everything(site_factory, client) -> None:
    site = site_factory(robots=404)
    gate = RobotsGate(client, UA)
    assert await gate.allowed(site.url("/private/page"))
    assert site.hits["/robots.txt"] == 1


async def test_failing_robots_is_retryable(site_factory, client) -> None:
    site = site_factory(robots=503)
    with pytest.raises(RetryableScrapeError, match=r"robots.txt answered 503"):
        await RobotsGate(client, UA).check(site.url("/page"))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "/relative",
        "http://h:port/",
    ],
)
def test_check_http_url_rejects(url) -> None:
    with pytest.raises(ValueError):
        check_http_url(url)


def test_check_http_url_accepts() -> None:
    assert check_http_url("HTTPS://Example.org:8443/a?b#c") == "HTTPS://Example.org:8443/a?b#c"
