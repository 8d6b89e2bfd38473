"""brains-jobs plugin: the demo's job types and the `brains-jobs demo` command.

The hooks live in `brains_jobs_demo.plugin` (the entry point), the job types in `jobs`,
the local site the report workflow scrapes in `site`, and the command in `command`.
"""

from __future__ import annotations

from .jobs import REPORT_PLUGINS as REPORT_PLUGINS
from .jobs import checksum as checksum
from .jobs import missing_report_plugins as missing_report_plugins
from .jobs import report_cover as report_cover
from .jobs import report_pdf as report_pdf
from .jobs import report_scrape as report_scrape
from .jobs import wordcount as wordcount
from .site import SITE_PARAGRAPHS as SITE_PARAGRAPHS
from .site import SITE_TITLE as SITE_TITLE
from .site import fixture_site as fixture_site

__all__ = [
    "REPORT_PLUGINS",
    "SITE_PARAGRAPHS",
    "SITE_TITLE",
    "checksum",
    "fixture_site",
    "missing_report_plugins",
    "report_cover",
    "report_pdf",
    "report_scrape",
    "wordcount",
]
