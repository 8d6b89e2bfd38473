"""Fetch one HTML page over HTTP(S): redirects checked hop by hop, size bounded, errors split.

The caller owns the `httpx.AsyncClient` (timeouts, user agent, proxies); this module
decides what a response means.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx

from .errors import PermanentScrapeError, RetryableScrapeError
from .robots import RobotsGate

MAX_REDIRECTS = 10
HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A successful response: the final URL after redirects and the whole body."""

    url: str
    final_url: str
    status_code: int
    content_type: str | None
    encoding: str | None
    body: bytes
    fetched_at: datetime

    @property
    def content_hash(self) -> str:
        """Hex SHA-256 of the body (after content decoding, as parsed)."""
        return hashlib.sha256(self.body).hexdigest()


def check_http_url(url: str) -> str:
    """Return `url` if it is an absolute http(s) URL with a host; raise `ValueError` if not."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {url!r} ({exc})") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError(f"only http and https URLs can be scraped, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    return url


async def fetch_page(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    robots: RobotsGate | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> FetchedPage:
    """GET `url`, following up to `max_redirects` redirects, and read at most `max_bytes`.

    With a `robots` gate every hop is checked against its origin's robots.txt, so a
    redirect cannot lead into a forbidden path. Raises `PermanentScrapeError` for 4xx,
    non-HTML content, a body over `max_bytes`, too many redirects or a redirect to a
    non-http(s) URL; `RetryableScrapeError` for timeouts, connection failures, 5xx and
    408/425/429.
    """
    current = url
    for _hop in range(max_redirects + 1):
        if robots is not None:
            await robots.check(current)
        try:
            async with client.stream("GET", current, follow_redirects=False) as response:
                location: str | None = response.headers.get("location")
                if response.is_redirect and location is not None:
                    current = _redirect_target(current, location)
                    continue
                _check_status(current, response)
                content_type = _check_content_type(current, response)
                body = await _read_limited(current, response, max_bytes)
                return FetchedPage(
                    url=url,
                    final_url=str(response.url),
                    status_code=response.status_code,
                    content_type=content_type,
                    encoding=response.charset_encoding,
                    body=body,
                    fetched_at=datetime.now(UTC),
                )
        except httpx.TimeoutException as exc:
            raise RetryableScrapeError(f"timed out fetching {current}") from exc
        except httpx.TransportError as exc:
            raise RetryableScrapeError(f"could not fetch {current}: {exc!r}") from exc
        except httpx.InvalidURL as exc:
            raise PermanentScrapeError(f"invalid URL {current!r}: {exc}") from exc
    raise PermanentScrapeError(f"more than {max_redirects} redirects starting from {url}")


def _redirect_target(current: str, location: str) -> str:
    target = urljoin(current, location.strip())
    try:
        return check_http_url(target)
    except ValueError as exc:
        raise PermanentScrapeError(f"{current} redirects to an unusable URL: {exc}") from None


def _check_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    reason = response.reason_phrase
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise RetryableScrapeError(f"{status} {reason} for {url}")
    if status >= 300:  # 4xx, or a 3xx that is not a usable redirect (304, no Location)
        raise PermanentScrapeError(f"{status} {reason} for {url}")


def _check_content_type(url: str, response: httpx.Response) -> str | None:
    header: str | None = response.headers.get("content-type")  # httpx types get() as Any
    if header is None:
        return None  # servers that send none almost always mean HTML; the parser copes
    media_type = header.split(";", 1)[0].strip().lower()
    if media_type not in HTML_CONTENT_TYPES:
        raise PermanentScrapeError(f"{url} is {media_type or 'untyped'}, not HTML")
    return media_type


async def _read_limited(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    declared: str | None = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PermanentScrapeError(f"response larger than {max_bytes} bytes: {url}")
    chunks: list[bytes] = []
    size = 0
    # aiter_bytes yields decoded content, so a small gzip bomb is caught as it expands.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise PermanentScrapeError(f"response larger than {max_bytes} bytes: {url}")
        chunks.append(chunk)
    return b"".join(chunks)
