"""Errors of the scraping domain, split by whether another attempt can help.

    ScrapeError
    ├── PermanentScrapeError   4xx, robots.txt forbids, too large, not HTML, bad URL
    └── RetryableScrapeError   timeouts, 5xx, 429, connection refused or reset

The domain modules raise these and know nothing of the job runtime; the job handler in
`plugin.py` turns a `PermanentScrapeError` into `brains_jobs.PermanentError` and lets a
`RetryableScrapeError` propagate as the ordinary exception the runtime retries.
"""

from __future__ import annotations


class ScrapeError(Exception):
    """Base class of every error the scraping domain raises."""


class PermanentScrapeError(ScrapeError):
    """Fetching this URL again will fail the same way."""


class RetryableScrapeError(ScrapeError):
    """The failure may be transient: a later attempt can succeed."""
