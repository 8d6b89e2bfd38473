"""The report workflow through `brains-jobs demo`: scrape a page the demo serves, draw a
cover, export a PDF; three jobs, each enqueued by the one before, with progress shown.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from brains_jobs_demo.site import SITE_PARAGRAPHS, SITE_TITLE
from pypdf import PdfReader

pytestmark = pytest.mark.slow

STEPS = ("demo.report.scrape", "demo.report.cover", "demo.report.pdf")


def brains_jobs(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`brains-jobs ARGS` with the installed plugins (and no BRAINS_JOBS_* from outside)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINS_JOBS_")}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "brains_jobs", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def words(text: str) -> str:
    return " ".join(text.split())


def test_demo_chains_scrape_cover_pdf(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    out = brains_jobs(tmp_path, "demo", "--db", db, "--artifacts", str(tmp_path / "artifacts"))
    assert out.returncode == 0, out.stdout + out.stderr

    # The PDF holds the page's title and text, and the cover image.
    found = re.search(r"^Report PDF \((\d+) page\(s\), \d+ bytes\): (.+\.pdf)$", out.stdout, re.M)
    assert found, out.stdout
    pdf = Path(found[2])
    assert pdf.is_relative_to(tmp_path / "artifacts") and pdf.is_file()
    reader = PdfReader(pdf)
    assert len(reader.pages) == int(found[1])
    text = words(" ".join(page.extract_text() for page in reader.pages))
    assert SITE_TITLE in text
    for paragraph in SITE_PARAGRAPHS:
        assert words(paragraph) in text
    assert sum(len(page.images) for page in reader.pages) == 1

    # Three jobs, each the parent of the next, each with live progress shown.
    listed = brains_jobs(tmp_path, "list", "--db", db, "--json")
    jobs = {job["type"]: job for job in map(json.loads, listed.stdout.splitlines())}
    scrape, cover, report = (jobs[step] for step in STEPS)
    assert [j["status"] for j in (scrape, cover, report)] == ["succeeded"] * 3
    assert scrape["parent_id"] is None
    assert cover["parent_id"] == scrape["id"] and scrape["output"]["next_job_id"] == cover["id"]
    assert report["parent_id"] == cover["id"] and cover["output"]["next_job_id"] == report["id"]
    for job in (scrape, cover, report):
        assert re.search(rf"#{job['id']} {job['type']} progress ", out.stdout), job["type"]
        assert f"#{job['id']} {job['type']} succeeded" in out.stdout
    assert report["output"]["pdf"]["key"] in str(pdf)

    # The stand-alone demo jobs ran beside the chain.
    assert jobs["demo.checksum"]["status"] == jobs["demo.wordcount"]["status"] == "succeeded"


def test_demo_without_the_plugins_skips_the_workflow(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    out = brains_jobs(
        tmp_path,
        "demo",
        "--db",
        db,
        "--artifacts",
        str(tmp_path / "artifacts"),
        BRAINS_JOBS_PLUGINS_DENY="pdf-export,image-generation",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        "The report workflow needs these plugins: pip install "
        "brains-jobs-image-generation brains-jobs-pdf-export"
    ) in out.stdout
    assert "demo.report" not in out.stdout and "Report PDF" not in out.stdout
    assert "demo.checksum succeeded" in out.stdout
