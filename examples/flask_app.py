"""A Flask application that enqueues a job from a route with `bj.SyncClient`, and a route
that shows the job's status and result; a worker process runs the job.

Shows:
- one `bj.SyncClient` per process, made by the app factory and opened on first use (so
  after a pre-forking server such as gunicorn forked its workers);
- `client.enqueue(...)` in a plain `def` view: the input is validated at once, and bad
  input becomes a 422 naming the fields (`bj.InvalidJobInput`);
- `client.get(...)` for the status, and `client.result(..., timeout=...)` to wait a
  moment for the typed result;
- `brains-jobs worker --burst` running the queued job in another process.

Run it:

    python examples/flask_app.py

runs a short demonstration through Flask's test client, with an SQLite file in a
temporary directory (or the database given by `BRAINS_JOBS_DATABASE_URL`). To serve the
app, start a worker and the app side by side, from `examples/`:

    PYTHONPATH=. brains-jobs worker --db sqlite+aiosqlite:///webapp.db --plugin _webapp_jobs
    BRAINS_JOBS_DATABASE_URL=sqlite+aiosqlite:///webapp.db flask --app flask_app run

then `curl -d name=Ada -d email=ada@example.com localhost:5000/signups` and follow the
`status_url` it returns.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _webapp_jobs import JOBS, status_of, welcome_email
from flask import Flask, abort, request, url_for

import brains_jobs as bj

HERE = Path(__file__).resolve().parent


def create_app(database_url: str | None = None) -> Flask:
    """The application; `database_url` defaults to `BRAINS_JOBS_DATABASE_URL`."""
    app = Flask(__name__)
    # Made here, opened by the first request that uses it: nothing runs before a fork.
    # `load_entrypoints=False`: this process needs no installed plugins to enqueue.
    client = bj.SyncClient(database_url, jobs=JOBS, load_entrypoints=False)
    app.extensions["brains_jobs"] = client

    @app.post("/signups")
    def signup() -> tuple[dict[str, Any], int]:
        data = request.get_json(silent=True) or request.form.to_dict()
        try:
            handle = client.enqueue(welcome_email, data, tags=["signup"])
        except bj.InvalidJobInput as exc:
            return {"error": str(exc), "fields": exc.fields}, 422
        status_url = url_for("signup_status", job_id=handle.id)
        return {"job_id": handle.id, "status_url": status_url}, 202

    @app.get("/signups/<int:job_id>")
    def signup_status(job_id: int) -> dict[str, Any]:
        try:
            job = client.get(job_id)
        except bj.JobNotFound:
            abort(404)
        if job.type != welcome_email.name:
            abort(404)
        wait = min(request.args.get("wait", 0.0, type=float), 10.0)
        if wait > 0 and not job.status.is_final:
            # Holds this request's thread for at most `wait` seconds; the job goes on.
            with contextlib.suppress(TimeoutError, bj.JobError):
                client.result(job_id, timeout=wait, definition=welcome_email)
            job = client.get(job_id)
        return status_of(job)

    return app


def run_worker(url: str, artifacts: str) -> None:
    """A worker process that runs every queued job, then exits (`--burst`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "brains_jobs", "worker", "--db", url, "--burst"]
    command += ["--plugin", "_webapp_jobs", "--artifacts", artifacts, "--log-level", "warning"]
    subprocess.run(command, env=env, check=True, timeout=60)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("BRAINS_JOBS_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/webapp.db"
        app = create_app(url)
        web = app.test_client()

        created = web.post("/signups", data={"name": "Ada", "email": "ada@example.com"})
        print(f"POST /signups: {created.status_code} {created.json}")
        rejected = web.post("/signups", json={"name": "Bob", "email": "bob at example"})
        print(f"POST /signups: {rejected.status_code} fields={rejected.json['fields']}")
        status_url = created.json["status_url"]
        print(f"GET {status_url}: {web.get(status_url).json['status']}")

        run_worker(url, os.path.join(tmp, "artifacts"))

        done = web.get(f"{status_url}?wait=5").json
        print(f"GET {status_url}: {done['status']}, subject {done['result']['subject']!r}")
        app.extensions["brains_jobs"].close()


if __name__ == "__main__":
    main()
