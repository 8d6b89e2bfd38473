"""The dashboard in a real browser: Debian's Chromium (`/usr/bin/chromium`) driven by
Playwright, against `brains-jobs serve` on SQLite and PostgreSQL with a worker in another
process.

Without `/usr/bin/chromium` (or Playwright) the tier is skipped, except under CI=true,
where it fails. No browser is ever downloaded. Screenshots go to the directory named by
`BRAINS_JOBS_SCREENSHOTS`, or to the test's temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import empty_database
from tests.web.conftest import ROOT, TOKENS, Server, env, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
PLUGINS = ("--plugin", "tests.support.jobs", "--plugin", "tests.web.dashboard_jobs")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tier must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Chromium, launched once per module (its event loop ends with the module)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@dataclass
class Stack:
    """A server, a worker process and the database they share."""

    server: Server
    worker: subprocess.Popen[bytes]
    worker_log: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def api(self, who: str = "admin") -> httpx.Client:
        return self.server.client(who)


def _wait_for_worker(server: Server, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    with server.client("admin") as api:
        while not api.get("/api/workers").json()["workers"]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start: {log.read_text()}")
            time.sleep(0.1)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """`brains-jobs serve` and `brains-jobs worker` (separate processes) on one database."""
    tmp = tmp_path_factory.mktemp("browser")
    with empty_database(request.param, tmp, "bj_browser") as url:
        artifacts = str(tmp / "artifacts")
        server = start_server(url, tmp, *PLUGINS[2:], BRAINS_JOBS_ARTIFACTS=artifacts)
        log = tmp / "worker.log"
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "brains_jobs", "worker", "--db", url, *PLUGINS, "-c", "4"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env(BRAINS_JOBS_ARTIFACTS=artifacts),
                cwd=ROOT,
            )
        try:
            _wait_for_worker(server, worker, log)
            yield Stack(server, worker, log)
        finally:
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
            stop_server(server)
    text = server.log.read_text()
    assert "Traceback" not in text, text
    assert all(token not in text for token, _, _ in TOKENS.values())


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where screenshots go: `BRAINS_JOBS_SCREENSHOTS`, or the test's tmp_path."""
    given = os.environ.get("BRAINS_JOBS_SCREENSHOTS")
    folder = Path(given) if given else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
