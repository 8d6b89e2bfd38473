"""Every example under examples/ runs to completion, and the documented ones print what the
docs say they print.

Each example runs as `python examples/NAME.py` with this interpreter, in an empty
temporary directory, with no `BRAINS_JOBS_*` variables from the calling environment.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))

# Lines an example must print: what it exists to show.
KEY_LINES = {
    "host_app.py": [
        "slug: hello-brains-jobs",
        "invoice 2024-001 total: 42.50",
        "rejected: invalid input for job type 'example.invoice-total': lines:",
        "slug from the background worker: workers-in-task-groups",
    ],
    "plugin_in_code.py": [
        "owner: AuditPlugin",
        "job #2: HELLO, GRACE",
        "plugin subscriber saw job #2: queued -> running -> queued -> running -> succeeded",
    ],
    "progress_subscriber.py": [
        "#2 progress 100% chunk 2/2",
        "#2 succeeded (attempt 1)",
        "dropped: missed ",
        "followed all 10 jobs to the end",
    ],
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINS_JOBS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_documented_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert set(KEY_LINES) <= names, f"missing examples: {set(KEY_LINES) - names}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_says_what_it_shows_and_how_to_run_it(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path.name}: start with a docstring saying what it shows and how to run it"
    assert f"python examples/{path.name}" in doc, (
        f"{path.name}: the docstring should show how to run it: `python examples/{path.name}`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, f"{path.name} exited with {proc.returncode}\n{report}"
    for line in KEY_LINES.get(path.name, []):
        assert line in proc.stdout, f"{path.name} did not print {line!r}\n{report}"
    if path.name in KEY_LINES:
        leftovers = sorted(p.name for p in tmp_path.iterdir())
        assert not leftovers, f"{path.name} left files in its working directory: {leftovers}"
