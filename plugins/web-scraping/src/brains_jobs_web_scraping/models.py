"""Input and output models of the `web-scraping` job type."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .fetch import check_http_url
from .parse import validate_selector

DEFAULT_USER_AGENT = (
    "brains-jobs-web-scraping/0.1 (+https://pypi.org/project/brains-jobs-web-scraping/)"
)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_MAX_BYTES = 50 * 1024 * 1024


class ScrapeRequest(BaseModel):
    """What to fetch, what to extract from it, and the limits of the fetch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(max_length=2048, description="Absolute http or https URL to fetch.")
    selectors: dict[str, str] = Field(
        default_factory=dict,
        max_length=100,
        description="Field name -> CSS selector; each field gets the text of the first match.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description="Seconds for the whole fetch (robots.txt, redirects and body).",
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_BYTES,
        ge=1024,
        le=MAX_MAX_BYTES,
        description="Largest body accepted, after content decoding.",
    )
    user_agent: str = Field(default=DEFAULT_USER_AGENT, min_length=1, max_length=512)
    obey_robots: bool = Field(
        default=True, description="Check robots.txt of every origin on the way first."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value.strip())

    @field_validator("selectors")
    @classmethod
    def _valid_selectors(cls, value: dict[str, str]) -> dict[str, str]:
        for name, selector in value.items():
            if not name:
                raise ValueError("selector field names must not be empty")
            validate_selector(selector)
        return value

    @field_validator("user_agent")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(c in value for c in "\r\n\x00"):
            raise ValueError("user_agent must be a single line")
        return value


class ScrapedPage(BaseModel):
    """The fetched page, reduced to what a program reads."""

    url: str = Field(description="The URL that was requested.")
    final_url: str = Field(description="The URL that answered, after redirects.")
    status_code: int
    title: str | None
    text: str = Field(
        description="Main text: scripts and styles removed, one line per block, "
        "runs of whitespace collapsed."
    )
    links: list[str] = Field(description="Absolute http(s) links, fragments dropped, unique.")
    fields: dict[str, str | None] = Field(description="Text per requested selector, or None.")
    content_hash: str = Field(description="Hex SHA-256 of the body.")
    fetched_at: datetime
    elapsed: float = Field(description="Seconds from the first request to the parsed page.")
