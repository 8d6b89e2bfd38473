"""A FastAPI application with routes of its own that mounts the brains-jobs HTTP API and
dashboard under `/jobs`, behind its own sign-in.

Shows:
- one `bj.Runtime` opened in the host's lifespan (a mounted app gets no lifespan of its
  own) and used by the host's routes directly (`await rt.enqueue(...)`);
- `create_app(rt, auth=...)` mounted at `/jobs`: the JSON API under `/jobs/api`, the
  dashboard under `/jobs/dashboard`, both behind the host's resolver, which maps the
  host's own credentials (here an `X-User` header) to a `Principal` and a role;
- a user seeing its own jobs through the mounted API, and someone else's as 404;
- a worker in the same process for the demonstration (in production, in its own).

Run it:

    python examples/fastapi_app.py

serves the app with uvicorn on a free port of 127.0.0.1 for a short demonstration,
with an SQLite file in a temporary directory. To serve it yourself:

    uvicorn fastapi_app:app   # from examples/, with a worker beside it
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel

import brains_jobs as bj
from brains_jobs.web import Principal, Role, create_app

DATABASE = Path(tempfile.mkdtemp()) / "host.db"


class Report(BaseModel):
    title: str
    pages: int


class Rendered(BaseModel):
    summary: str


@bj.job("host.report")
async def render_report(ctx: bj.JobContext, inp: Report) -> Rendered:
    for page in range(1, inp.pages + 1):
        await ctx.progress(page / inp.pages, f"page {page}/{inp.pages}")
    return Rendered(summary=f"{inp.title}: {inp.pages} pages")


rt = bj.Runtime(f"sqlite+aiosqlite:///{DATABASE}", jobs=[render_report], load_entrypoints=False)

STAFF = {"ada"}


def signed_in(request: Request) -> Principal | None:
    """The host's own sign-in (a header here; a session or a JWT in an application)."""
    user = request.headers.get("x-user")
    if not user:
        return None
    return Principal(user, Role.ADMIN if user in STAFF else Role.USER)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with rt:
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/reports", status_code=202)
async def request_report(report: Report, request: Request) -> dict[str, object]:
    """The host's own route: enqueue a job for the signed-in user."""
    user = signed_in(request)
    handle = await rt.enqueue(render_report, report, owner=user.user if user else None)
    return {"job_id": handle.id, "follow": f"/jobs/api/jobs/{handle.id}"}


app.mount("/jobs", create_app(rt, auth=signed_in))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def demo() -> None:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:  # uvicorn tells no event of its own  # noqa: ASYNC110
            await anyio.sleep(0.05)
        worker = rt.worker(concurrency=2)
        tg.start_soon(worker.run)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            grace = {"x-user": "grace"}
            made = (await http.post("/reports", json={"title": "Q3", "pages": 3}, headers=grace))
            job_id = made.json()["job_id"]
            print(f"enqueued by the host's route: job #{job_id}")
            await rt.handle(job_id).wait(timeout=30)
            job = (await http.get(f"/jobs/api/jobs/{job_id}", headers=grace)).json()
            print(f"grace sees job #{job_id}: {job['status']}, output {job['output']}")
            other = await http.get(f"/jobs/api/jobs/{job_id}", headers={"x-user": "bob"})
            print(f"bob asks for it: {other.status_code} {other.json()['error']['type']}")
            mine = (await http.get("/jobs/api/jobs", headers=grace)).json()
            print(f"grace's jobs: {[j['id'] for j in mine['jobs']]}")
            anonymous = await http.get("/jobs/api/jobs")
            print(f"without signing in: {anonymous.status_code}")
            page = await http.get("/jobs/dashboard/", headers={"x-user": "ada"})
            print(f"the dashboard for ada: {page.status_code} {page.headers['content-type']}")
        worker.stop()
        server.should_exit = True


if __name__ == "__main__":
    anyio.run(demo)
