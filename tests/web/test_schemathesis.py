"""Property-based requests generated from the live server's own OpenAPI document: no
request makes a server error, and every response fits the document.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import empty_database
from tests.web.conftest import TOKENS, Server, start_server, stop_server

ST = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"


@pytest.fixture
def fuzzed(store_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server of its own on a database of its own (it fills with generated jobs), on
    each store.
    """
    store = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    with empty_database(store, tmp_path, "bj_fuzz") as url:
        live = start_server(url, tmp_path)
        yield live
        stop_server(live)


@pytest.mark.slow
def test_generated_requests_find_no_server_error(fuzzed: Server, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            ST,
            "run",
            f"{fuzzed.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {TOKENS['admin'][0]}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "8",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20240501",
            "--request-timeout",
            "20",
            # An endless stream, and a worker that would run the generated jobs.
            "--exclude-path",
            "/api/events",
            "--exclude-path",
            "/api/worker/run",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
    errors = [line for line in fuzzed.log.read_text().splitlines() if "Traceback" in line]
    assert not errors, fuzzed.log.read_text()[-6000:]
