"""A plugin is a folder that `pip install` takes, with no change to the host.

Each test installs a plugin's folder, alone, into a fresh virtual environment where only
the core is installed, then uses the plain `brains-jobs` commands of that environment:
`plugins` lists the plugin with its version and job types, and `enqueue` plus
`worker --burst` run a job of its type.

No network: the environment is made with `python -m venv`, and the third-party
distributions that the core, the plugins, the build backend and pytest need are those of
the environment running this test, linked (one by one, with their metadata, so that pip
sees them installed) into a folder that a `.pth` file puts on the fresh environment's
path. The core and the plugins themselves are built and installed by pip, from their
folders, with `--no-index --no-build-isolation`. The dev environment's editable plugins
are not linked, so the fresh environment finds no plugin it was not given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.acceptance.conftest import ROOT

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "plugin_author"
PDF_EXPORT = ROOT / "plugins" / "pdf-export"
# Built and installed by pip from their folders, never linked.
OURS = {"brains-jobs": ROOT, "brains-jobs-hello": EXAMPLE, "brains-jobs-pdf-export": PDF_EXPORT}
# What the fresh environment must offer: ours, the build backend, and pytest for the
# example's own test.
ROOTS = [*OURS, "hatchling", "pytest"]


def _requirements(name: str, extras: frozenset[str]) -> list[Requirement]:
    """What `name` with `extras` needs, from its pyproject (ours) or installed metadata."""
    if name in OURS:
        project = tomllib.loads((OURS[name] / "pyproject.toml").read_text())["project"]
        lines = project["dependencies"]
    else:
        lines = metadata.distribution(name).requires or []
    wanted = [{"extra": extra} for extra in ("", *extras)]
    return [
        req
        for req in map(Requirement, lines)
        if req.marker is None or any(req.marker.evaluate(env) for env in wanted)
    ]


def _closure() -> list[metadata.Distribution]:
    """Every third-party distribution the ROOTS need, recursively, as installed here."""
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(name, frozenset[str]()) for name in ROOTS]
    while todo:
        item = todo.pop()
        if item not in visited:
            visited.add(item)
            todo.extend(
                (canonicalize_name(req.name), frozenset(req.extras)) for req in _requirements(*item)
            )
    names = {name for name, _ in visited} - OURS.keys()
    return [metadata.distribution(name) for name in sorted(names)]


def _link_distributions(target: Path) -> None:
    """Link each needed distribution's top-level files and its .dist-info into `target`."""
    target.mkdir()
    for dist in _closure():
        site = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in sorted(tops - {"..", "__pycache__"}):
            link = target / top
            if not link.exists() and (site / top).exists():
                link.symlink_to(site / top)


@dataclass
class Env:
    """A fresh virtual environment and the commands run in it."""

    path: Path
    work: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def environ(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("BRAINS_JOBS_") and k not in {"PYTHONPATH", "VIRTUAL_ENV"}
        }
        env["BRAINS_JOBS_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.work / 'jobs.db'}"
        env["BRAINS_JOBS_ARTIFACTS"] = str(self.work / "artifacts")
        env["PIP_NO_INDEX"] = "1"  # never the network: everything is here already
        return env

    def run(self, *cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(c) for c in cmd],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.environ(),
            cwd=cwd or self.work,
        )
        assert out.returncode == 0, f"{cmd} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
        return out

    def pip_install(self, folder: Path) -> None:
        self.run(
            self.bin / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            folder,
        )

    def cli(self, *args: str) -> str:
        return self.run(self.bin / "brains-jobs", *args).stdout

    def run_job(self, job_type: str, data: dict[str, object]) -> dict[str, object]:
        """Enqueue one job, drain the queue with a burst worker, return the job record."""
        job_id = self.cli("enqueue", job_type, json.dumps(data)).strip()
        self.cli("worker", "--burst")
        shown = self.cli("show", job_id, "--no-events")
        record: dict[str, object] = json.loads(shown)
        return record


@pytest.fixture
def fresh_env(tmp_path: Path) -> Env:
    """A new virtual environment with only brains-jobs installed (and its dependencies)."""
    try:
        metadata.distribution("hatchling")
    except metadata.PackageNotFoundError:
        # pip builds the folders with the build backend found here (no network).
        why = "the build backend hatchling is not installed here (it belongs in the dev extra)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    deps = tmp_path / "deps"
    _link_distributions(deps)
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    (Path(purelib) / "_brains_jobs_test_deps.pth").write_text(f"{deps}\n")
    work = tmp_path / "work"
    work.mkdir()
    env = Env(venv, work)
    env.pip_install(ROOT)
    return env


def test_example_plugin_installs_alone_and_runs(fresh_env: Env) -> None:
    before = fresh_env.cli("plugins")
    assert "brains_jobs.builtin (brains-jobs 0.1.0)" in before
    assert "hello" not in before and "testplugin" not in before and "pdf-export" not in before

    fresh_env.pip_install(EXAMPLE)

    listing = fresh_env.cli("plugins")
    assert "hello (brains-jobs-hello 0.1.0)\n    hello.greet\n" in listing
    assert "FAILED" not in listing
    job = fresh_env.run_job("hello.greet", {"name": "Ada"})
    assert job["status"] == "succeeded", job
    output = job["output"]
    assert isinstance(output, dict) and output["text"] == "Hello, Ada!"
    card = fresh_env.work / "artifacts" / output["card"]["key"]
    assert card.read_bytes() == b"Hello, Ada!"

    # The plugin's own test passes there too, with the fixtures the core publishes.
    tests = fresh_env.run(
        fresh_env.bin / "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        EXAMPLE / "test_hello.py",
        cwd=EXAMPLE,
    )
    assert "1 passed" in tests.stdout


def test_real_plugin_installs_alone_and_runs(fresh_env: Env) -> None:
    fresh_env.pip_install(PDF_EXPORT)

    listing = fresh_env.cli("plugins")
    assert "pdf-export (brains-jobs-pdf-export 0.1.0)\n    pdf-export\n" in listing
    assert "web-scraping" not in listing and "FAILED" not in listing
    job = fresh_env.run_job(
        "pdf-export", {"title": "Fresh", "sections": [{"heading": "One", "body": "installed"}]}
    )
    assert job["status"] == "succeeded", job
    output = job["output"]
    assert isinstance(output, dict) and output["pages"] == 1
    pdf = fresh_env.work / "artifacts" / output["artifact"]["key"]
    assert pdf.read_bytes().startswith(b"%PDF-")
