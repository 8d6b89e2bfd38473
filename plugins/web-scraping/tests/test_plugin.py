"""The job through a real runtime (temporary SQLite file) against the fixture site."""

from __future__ import annotations

import dataclasses
import re
from importlib.metadata import entry_points

import brains_jobs as bj
import pytest
from brains_jobs import testing

from brains_jobs_web_scraping import plugin
from brains_jobs_web_scraping.models import ScrapedPage, ScrapeRequest

pytestmark = pytest.mark.anyio


async def test_scrape_job_output_and_progress(site, tmp_path) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        assert rt.registry.get("web-scraping") is plugin.scrape
        req = ScrapeRequest(
            url=site.url("/redirect"),
            selectors={"price": ".price", "author": "#author", "missing": ".nope"},
        )
        job = await testing.run_until_final(rt, plugin.scrape, req)
        assert job.status is bj.JobStatus.SUCCEEDED
        assert job.attempts == 1
        page = plugin.scrape.parse_output(job.output)
        events = await rt.store.events_after(0, job_id=job.id)

    assert isinstance(page, ScrapedPage)
    assert page.url == site.url("/redirect")
    assert page.final_url == site.url("/page")
    assert page.status_code == 200
    assert page.title == "Fixture Page"
    assert page.text.splitlines()[:4] == [
        "Hello World",
        "First boldword and a line break",
        "after it.",
        "one",
    ]
    assert "hidden" not in page.text and "color: red" not in page.text
    assert page.fields == {"price": "42.00 EUR", "author": "Ada Lovelace", "missing": None}
    assert page.links == [
        site.url("/about"),
        site.url("/contact.html"),
        "https://example.org/x",
        site.url("/page"),
        "http://cdn.example.net/lib",
    ]
    assert len(page.content_hash) == 64
    assert page.elapsed > 0
    progress = [(e.progress, e.message) for e in events if e.kind is bj.EventKind.PROGRESS]
    assert [p for p, _ in progress] == [0.2, 0.6, 0.9]
    assert progress[0][1] == "robots.txt allows /redirect"
    assert progress[1][1].startswith("fetched ") and site.url("/page") in progress[1][1]
    logs = [e.message for e in events if e.kind is bj.EventKind.LOG]
    assert any(m and m.startswith(f"fetched {site.url('/page')}: 200") for m in logs)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "404 Not Found for"),
        ("/private/page", "robots.txt of .* forbids /private/page"),
        ("/huge", "response larger than 1048576 bytes"),
        ("/image.png", "is image/png, not HTML"),
    ],
)
async def test_permanent_errors_are_not_retried(site, tmp_path, path, message) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        req = ScrapeRequest(url=site.url(path), max_bytes=1024 * 1024)
        job = await testing.run_until_final(rt, plugin.scrape, req)
    assert job.status is bj.JobStatus.FAILED
    assert job.attempts == 1  # max_attempts is 5: a permanent error stops at the first
    [error] = job.errors
    assert error.type == "PermanentError"
    assert re.search(message, error.message)
    assert site.hits[path] == (0 if path.startswith("/private") else 1)


async def test_retryable_errors_are_retried(site, tmp_path) -> None:
    # The real definition backs off 5 s; a copy with a tiny backoff keeps the test quick.
    fast = dataclasses.replace(plugin.scrape, retry=bj.RetryPolicy(base=0.01, cap=0.01))
    async with testing.runtime(tmp_path, jobs=[fast]) as rt:
        job = await testing.run_until_final(rt, fast, {"url": site.url("/flaky")})
        assert job.status is bj.JobStatus.SUCCEEDED
        assert job.attempts == 2
        assert [e.message for e in job.errors] == [
            f"503 Service Unavailable for {site.url('/flaky')}"
        ]
        assert job.errors[0].type == "RetryableScrapeError"
        assert fast.parse_output(job.output).title == "Flaky"

    slow = dataclasses.replace(fast, max_attempts=2)
    async with testing.runtime(tmp_path / "slow", jobs=[slow]) as rt:
        job = await testing.run_until_final(rt, slow, {"url": site.url("/slow"), "timeout": 0.3})
    assert job.status is bj.JobStatus.FAILED
    assert job.attempts == 2
    assert len(job.errors) == 2
    # httpx's read timeout and the fetch's own deadline race; either message is right.
    for error in job.errors:
        assert re.fullmatch(rf"timed out (after 0.3s )?fetching {site.url('/slow')}", error.message)


async def test_invalid_input_is_refused_at_enqueue(tmp_path) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        with pytest.raises(bj.InvalidJobInput) as info:
            await rt.enqueue("web-scraping", {"url": "ftp://example.org/file"})
    assert info.value.fields == ["url"]
    assert "only http and https" in str(info.value)


async def test_entry_point_registers_the_job(tmp_path, monkeypatch) -> None:
    [entry_point] = [ep for ep in entry_points(group="brains_jobs") if ep.name == "web-scraping"]
    assert entry_point.value == "brains_jobs_web_scraping.plugin"
    assert entry_point.load() is plugin
    # Through the real entry-point path, but only this plugin's entry point: the test
    # must not depend on whatever else is installed.
    monkeypatch.setenv("BRAINS_JOBS_PLUGINS_ALLOW", "web-scraping")
    async with testing.runtime(tmp_path, load_entrypoints=True) as rt:
        assert rt.registry.get("web-scraping") is plugin.scrape
