"""The web framework examples, through each framework's own test client, on a real SQLite
file, with a real worker process (`python -m brains_jobs worker`) running their jobs:
`examples/flask_app.py` and the Django project in `examples/django_app/`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DJANGO_PROJECT = EXAMPLES / "django_app"


@contextlib.contextmanager
def importable(*paths: Path) -> Iterator[None]:
    """`paths` on `sys.path` for the duration of the block."""
    added = [str(p) for p in paths if str(p) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            sys.path.remove(p)


def worker_command(url: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """The arguments of `subprocess.run`/`Popen` for a worker of the examples' job types."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINS_JOBS_")}
    env["PYTHONPATH"] = str(EXAMPLES)
    env["BRAINS_JOBS_PLUGINS_ALLOW"] = ""  # no installed plugins: only `--plugin`
    command = [sys.executable, "-m", "brains_jobs", "worker", "--db", url]
    command += ["--plugin", "_webapp_jobs", "--artifacts", str(tmp_path / "artifacts"), *args]
    return {"args": command, "env": env, "cwd": tmp_path, "text": True}


def run_burst_worker(url: str, tmp_path: Path) -> str:
    """Run a worker process until no job is left; its log."""
    proc = subprocess.run(
        **worker_command(url, tmp_path, "--burst"), capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stderr


@contextlib.contextmanager
def running_worker(url: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A worker process running for the duration of the block, stopped by SIGTERM."""
    with open(tmp_path / "worker.log", "w") as log:
        proc = subprocess.Popen(**worker_command(url, tmp_path), stdout=log, stderr=log)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(30) == 0, (tmp_path / "worker.log").read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


# -- Flask ----------------------------------------------------------------------------


@pytest.fixture
def flask_app() -> ModuleType:
    with importable(EXAMPLES):
        return importlib.import_module("flask_app")


def test_flask_routes_enqueue_and_report_a_job_run_by_a_worker(
    flask_app: ModuleType, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'webapp.db'}"
    app = flask_app.create_app(url)
    try:
        web = app.test_client()
        created = web.post("/signups", data={"name": "Ada", "email": "ada@example.com"})
        assert created.status_code == 202, created.text
        status_url = created.json["status_url"]
        assert status_url == f"/signups/{created.json['job_id']}"
        queued = web.get(status_url).json
        assert queued["status"] == "queued" and "result" not in queued

        rejected = web.post("/signups", json={"name": "", "email": "ada at example"})
        assert rejected.status_code == 422
        assert rejected.json["fields"] == ["name", "email"]
        assert web.get("/signups/999").status_code == 404

        log = run_burst_worker(url, tmp_path)
        assert "welcome email sent to ada@example.com" in log

        done = web.get(status_url).json
        assert done["status"] == "succeeded" and done["attempts"] == 1
        assert done["result"] == {
            "to": "ada@example.com",
            "subject": "Welcome, Ada!",
            "body": "Hello Ada, your account is ready.",
        }

        # `?wait=` waits in the request for the job a running worker picks up.
        with running_worker(url, tmp_path):
            second = web.post("/signups", json={"name": "Bo", "email": "bo@example.com"})
            waited = web.get(f"{second.json['status_url']}?wait=10").json
        assert waited["status"] == "succeeded"
        assert waited["result"]["subject"] == "Welcome, Bo!"
    finally:
        app.extensions["brains_jobs"].close()


# -- Django ---------------------------------------------------------------------------


@dataclass
class DjangoSite:
    url: str
    tmp_path: Path


@pytest.fixture(scope="module")
def django_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoSite]:
    """The example project, its settings given here, on an SQLite file of this module."""
    import django
    from django.conf import settings

    if settings.configured:
        pytest.fail("Django settings were configured before this module's tests")
    tmp_path = tmp_path_factory.mktemp("django")
    url = f"sqlite+aiosqlite:///{tmp_path / 'webapp.db'}"
    with importable(DJANGO_PROJECT, EXAMPLES):
        project = importlib.import_module("webapp.settings")
        options = {name: getattr(project, name) for name in dir(project) if name.isupper()}
        options.update(BRAINS_JOBS_DATABASE_URL=url, ALLOWED_HOSTS=["testserver"], DEBUG=False)
        settings.configure(**options)
        django.setup()
        from signups.background import client

        try:
            yield DjangoSite(url, tmp_path)
        finally:
            client.close()


def test_django_views_enqueue_and_report_a_job_run_by_a_worker(django_site: DjangoSite) -> None:
    from django.test import Client

    web = Client()
    form = web.get("/signups/")
    assert form.status_code == 200 and b'name="csrfmiddlewaretoken"' in form.content
    posted = web.post("/signups/", {"name": "Grace", "email": "grace@example.com"})
    assert posted.status_code == 302
    status_url = posted["Location"]
    queued = web.get(status_url).json()
    assert queued["status"] == "queued"

    rejected = web.post("/signups/", {"name": "Grace", "email": "grace"})
    assert rejected.status_code == 422 and rejected.json()["fields"] == ["email"]
    assert web.get("/signups/999/").status_code == 404
    # The form is protected like any other: a post without its token is refused.
    assert Client(enforce_csrf_checks=True).post("/signups/", {}).status_code == 403

    log = run_burst_worker(django_site.url, django_site.tmp_path)
    assert "welcome email sent to grace@example.com" in log

    done = web.get(status_url).json()
    assert done["job_id"] == queued["job_id"]
    assert done["status"] == "succeeded" and done["progress"] == 1.0
    assert done["result"]["subject"] == "Welcome, Grace!"


def test_django_management_command_enqueues_and_waits(django_site: DjangoSite) -> None:
    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("send_welcome", "Alan", "alan@example.com", stdout=out)
    assert out.getvalue().startswith("queued job #")
    with pytest.raises(CommandError, match=r"invalid input .* email"):
        call_command("send_welcome", "Alan", "nowhere", stdout=io.StringIO())

    with running_worker(django_site.url, django_site.tmp_path):
        out = io.StringIO()
        call_command("send_welcome", "Edsger", "edsger@example.com", "--wait", "20", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("queued job #")
    assert lines[1] == "sent to edsger@example.com: Welcome, Edsger!"
    log = (django_site.tmp_path / "worker.log").read_text()
    assert "welcome email sent to alan@example.com" in log  # queued earlier, run too
