"""robots.txt: fetch it once per origin, then answer whether a URL may be fetched."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import httpx
from protego import Protego

from .errors import PermanentScrapeError, RetryableScrapeError

ROBOTS_MAX_BYTES = 512 * 1024
"""Read at most this much of a robots.txt; Google's limit is 500 KiB, the rest is ignored."""


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def path_of(url: str) -> str:
    """The path and query of `url`, as robots.txt rules see it (`/` when empty)."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class RobotsGate:
    """Decides, per origin, whether `user_agent` may fetch a URL.

    Each origin's robots.txt is fetched once (following redirects) and cached for the
    life of the gate. Following the Robots Exclusion Protocol (RFC 9309): a 4xx robots.txt
    allows everything; a 5xx or an unreachable one is treated as "disallow for now",
    which here means a retryable error.
    """

    def __init__(self, client: httpx.AsyncClient, user_agent: str) -> None:
        self._client = client
        self._user_agent = user_agent
        self._rules: dict[str, Protego] = {}

    async def allowed(self, url: str) -> bool:
        """Whether robots.txt of `url`'s origin lets this gate's user agent fetch it."""
        rules = await self._rules_for(origin_of(url))
        return rules.can_fetch(url, self._user_agent)

    async def check(self, url: str) -> None:
        """Return if `url` may be fetched; raise `PermanentScrapeError` if robots.txt forbids it."""
        if not await self.allowed(url):
            raise PermanentScrapeError(
                f"robots.txt of {origin_of(url)} forbids {path_of(url)} "
                f"for user agent {self._user_agent!r}"
            )

    async def _rules_for(self, origin: str) -> Protego:
        rules = self._rules.get(origin)
        if rules is None:
            rules = Protego.parse(await self._download(f"{origin}/robots.txt"))
            self._rules[origin] = rules
        return rules

    async def _download(self, robots_url: str) -> str:
        try:
            async with self._client.stream("GET", robots_url, follow_redirects=True) as response:
                status = response.status_code
                if status >= 500 or status == 429:
                    raise RetryableScrapeError(
                        f"{robots_url} answered {status}; not crawling until it can be read"
                    )
                if status >= 400:
                    return ""  # no robots.txt: everything is allowed
                if status >= 300:
                    # follow_redirects stopped here: a loop, or a redirect without Location.
                    raise PermanentScrapeError(f"{robots_url} answered {status} without a target")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= ROBOTS_MAX_BYTES:
                        break
        except httpx.TooManyRedirects as exc:
            raise PermanentScrapeError(f"{robots_url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise RetryableScrapeError(f"timed out reading {robots_url}") from exc
        except httpx.TransportError as exc:
            raise RetryableScrapeError(f"could not read {robots_url}: {exc!r}") from exc
        return b"".join(chunks)[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
