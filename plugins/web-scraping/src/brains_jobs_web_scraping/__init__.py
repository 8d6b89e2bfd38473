"""brains-jobs plugin for the `web-scraping` job type.

The job definition and hook live in `brains_jobs_web_scraping.plugin` (the entry point);
`fetch`, `robots` and `parse` are plain functions usable without the runtime.
"""

from __future__ import annotations

from .errors import PermanentScrapeError as PermanentScrapeError
from .errors import RetryableScrapeError as RetryableScrapeError
from .errors import ScrapeError as ScrapeError
from .models import ScrapedPage as ScrapedPage
from .models import ScrapeRequest as ScrapeRequest

__all__ = [
    "PermanentScrapeError",
    "RetryableScrapeError",
    "ScrapeError",
    "ScrapeRequest",
    "ScrapedPage",
]
