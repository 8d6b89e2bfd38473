#!/usr/bin/env python3
"""Set up the development environment (once) and run a task in it.

    python3 dev.py demo      # the demo: jobs of several types with live progress
    python3 dev.py test      # the whole test suite (extra arguments go to pytest)
    python3 dev.py check     # ruff, mypy and the import layers (import-linter)
    python3 dev.py bench     # the SQLite benchmark (JSON on stdout)
    python3 dev.py faults    # the fault suite at full size, then its table (--short: CI size)

Needs only Python 3.11+. The first run creates `.venv/` and installs the project, its
plugins and the test tools from the package index; later runs reinstall only when a
pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".dev-stamp"

PACKAGES = [
    ".[dev]",
    "plugins/web-scraping[test]",
    "plugins/image-generation[test]",
    "plugins/pdf-export[test,typing]",
    "plugins/demo[test]",
]


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("**/pyproject.toml")):
        if ".venv" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def setup() -> None:
    """Create the virtual environment and install everything, unless it is current."""
    if sys.version_info < (3, 11):
        sys.exit(f"brains-jobs needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("installing brains-jobs, its plugins and the test tools into .venv ...", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    editable = [arg for pkg in PACKAGES for arg in ("-e", pkg)]
    subprocess.run([*pip, *editable], check=True, cwd=ROOT)
    STAMP.write_text(fingerprint)


def run(*cmd: str) -> int:
    return subprocess.run([str(c) for c in cmd], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    task, args = (argv[0], argv[1:]) if argv else ("help", [])
    if task in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    setup()
    if task == "demo":
        return run(BIN / "brains-jobs", "demo", *args)
    if task == "test":
        if any(Path(arg.split("::")[0]).exists() for arg in args):
            return run(PY, "-m", "pytest", *args)  # the tests named, as they are
        # The suite on two processes, then the tests that restart or flood the database
        # server (the fault suite at its short sizes among them), alone.
        tests = run(PY, "-m", "pytest", "-n", "2", "-m", "not serial", *args)
        serial = run(PY, "-m", "pytest", "-m", "serial", *args)
        return tests or serial
    if task == "check":
        return (
            run(PY, "-m", "ruff", "check", "src", "tests", "plugins", "benchmarks", "examples")
            or run(PY, "-m", "mypy")
            or run(BIN / "lint-imports")
        )
    if task == "bench":
        return run(PY, "benchmarks/sqlite_bench.py", *args)
    if task == "faults":
        env = dict(os.environ)
        if "--short" in args:
            args = [a for a in args if a != "--short"]
            env.pop("BRAINS_JOBS_FAULTS", None)
        else:
            env["BRAINS_JOBS_FAULTS"] = "full"
        pytest = [str(PY), "-m", "pytest", "tests/faults", "-p", "no:cacheprovider", *args]
        code = subprocess.run(pytest, cwd=ROOT, env=env).returncode
        return run(PY, "tests/faults/report.py") or code
    print(f"unknown task {task!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
