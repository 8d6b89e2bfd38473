"""The `web-scraping` job type and the hook that registers it (the entry point module)."""

from __future__ import annotations

import time

import anyio
import anyio.to_thread
import brains_jobs as bj
import httpx

from .errors import PermanentScrapeError, RetryableScrapeError
from .fetch import FetchedPage, fetch_page
from .models import ScrapedPage, ScrapeRequest
from .parse import parse_page
from .robots import RobotsGate, path_of

__all__ = ["brains_jobs_register_jobs", "scrape"]


@bj.job("web-scraping", max_attempts=5, backoff=5.0, backoff_cap=300.0, timeout=330.0)
async def scrape(ctx: bj.JobContext, req: ScrapeRequest) -> ScrapedPage:
    """Fetch one HTML page (robots.txt permitting) and extract title, text, links, fields.

    4xx, robots.txt refusals, non-HTML answers and bodies over `max_bytes` fail at once
    (`PermanentError`); timeouts, connection failures and 5xx are retried with backoff.
    """
    started = time.perf_counter()
    try:
        page = await _fetch(ctx, req)
    except PermanentScrapeError as exc:
        raise bj.PermanentError(str(exc)) from exc
    ctx.logger.info("fetched %s: %d, %d bytes", page.final_url, page.status_code, len(page.body))
    await ctx.progress(0.6, f"fetched {len(page.body)} bytes from {page.final_url}")
    # lexbor is fast, but a 50 MB page still takes a moment of CPU: keep the loop free.
    parsed = await anyio.to_thread.run_sync(
        lambda: parse_page(page.body, page.final_url, req.selectors, encoding=page.encoding)
    )
    await ctx.progress(0.9, f"parsed: {len(parsed.text)} characters, {len(parsed.links)} links")
    return ScrapedPage(
        url=req.url,
        final_url=page.final_url,
        status_code=page.status_code,
        title=parsed.title,
        text=parsed.text,
        links=list(parsed.links),
        fields=dict(parsed.fields),
        content_hash=page.content_hash,
        fetched_at=page.fetched_at,
        elapsed=time.perf_counter() - started,
    )


async def _fetch(ctx: bj.JobContext, req: ScrapeRequest) -> FetchedPage:
    headers = {"User-Agent": req.user_agent}
    async with httpx.AsyncClient(timeout=req.timeout, headers=headers) as client:
        try:
            # httpx bounds each read; this bounds the whole fetch, a slow drip included.
            with anyio.fail_after(req.timeout):
                gate = RobotsGate(client, req.user_agent) if req.obey_robots else None
                if gate is not None:
                    await gate.check(req.url)
                    await ctx.progress(0.2, f"robots.txt allows {path_of(req.url)}")
                else:
                    await ctx.progress(0.2, "robots.txt not consulted (obey_robots is off)")
                return await fetch_page(client, req.url, max_bytes=req.max_bytes, robots=gate)
        except TimeoutError as exc:
            raise RetryableScrapeError(
                f"timed out after {req.timeout:g}s fetching {req.url}"
            ) from exc


@bj.hookimpl
def brains_jobs_register_jobs(register: bj.Register) -> None:
    """Register the `web-scraping` job type."""
    register(scrape)
