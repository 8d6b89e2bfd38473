"""models.py: what the job accepts and refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from brains_jobs_web_scraping.models import DEFAULT_MAX_BYTES, ScrapeRequest


def test_defaults() -> None:
    req = ScrapeRequest(url="https://example.org/a")
    assert req.selectors == {}
    assert req.max_bytes == DEFAULT_MAX_BYTES == 5 * 1024 * 1024
    assert req.obey_robots is True
    assert req.user_agent.startswith("brains-jobs-web-scraping/")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"url": "ftp://example.org/"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "example.org"}, "url"),
        ({"url": "http://" + "a" * 3000}, "url"),
        ({"url": "http://h/", "selectors": {"x": "a[[["}}, "selectors"),
        ({"url": "http://h/", "selectors": {"": "p"}}, "selectors"),
        ({"url": "http://h/", "timeout": 0}, "timeout"),
        ({"url": "http://h/", "timeout": 301}, "timeout"),
        ({"url": "http://h/", "max_bytes": 10}, "max_bytes"),
        ({"url": "http://h/", "max_bytes": 10**9}, "max_bytes"),
        ({"url": "http://h/", "user_agent": "a\r\nX-Injected: 1"}, "user_agent"),
        ({"url": "http://h/", "unknown": 1}, "unknown"),
    ],
)
def test_invalid_input_names_the_field(data, field) -> None:
    with pytest.raises(ValidationError) as info:
        ScrapeRequest.model_validate(data)
    assert [e["loc"][0] for e in info.value.errors()] == [field]
