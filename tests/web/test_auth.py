"""Who may do what: every route against every kind of caller, the token formats, and the
refusals of `brains-jobs serve`.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from brains_jobs.config import load_settings
from brains_jobs.exceptions import ConfigurationError
from brains_jobs.web import Principal, Role, TokenAuth
from brains_jobs.web.auth import parse_tokens
from tests.web.conftest import ROOT, TOKENS, Server, env, start_server, stop_server

CALLERS = ["none", "bad", "owner", "other", "viewer", "admin"]


def headers(caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    if caller == "bad":
        return {"Authorization": "Bearer not-a-token"}
    who = {"owner": "alice", "other": "bob"}.get(caller, caller)
    return {"Authorization": f"Bearer {TOKENS[who][0]}"}


def new_job(server: Server, state: str) -> int:
    """A job of alice's in `state`: queued (in a queue no worker takes), failed, tracked."""
    with server.client("alice") as alice:
        body: dict[str, Any] = {"type": "noop", "input": {"a": 1}, "queue": "parked"}
        if state == "tracked":
            body["track_ttl"] = 600
        response = alice.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        job_id: int = response.json()["id"]
        if state == "failed":
            assert alice.post(f"/api/jobs/{job_id}/fail", json={"reason": "x"}).status_code == 200
    return job_id


@dataclass
class Route:
    """A route, the job it needs, and what each caller gets."""

    method: str
    path: str
    job: str | None = None  # the state of the job `{id}` names
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    ok: int = 200
    write: bool = False  # a viewer gets 403
    admin_only: bool = False
    public: bool = False
    other: int | None = None  # what another user gets; default 404 on a job, else `ok`
    stream: bool = False

    def expected(self, caller: str) -> int:
        if self.public:
            return self.ok
        if caller in ("none", "bad"):
            return 401
        if self.admin_only and caller != "admin":
            return 403
        if self.write and caller == "viewer":
            return 403
        if caller == "other":
            if self.other is not None:
                return self.other
            return 404 if self.job else self.ok
        return self.ok


ROUTES = [
    Route("GET", "/healthz", public=True),
    Route("GET", "/openapi.json", public=True),
    Route("GET", "/api/jobs"),
    Route(
        "POST",
        "/api/jobs",
        body={"type": "noop", "input": {"a": 1}, "queue": "parked"},
        ok=201,
        write=True,
    ),
    Route("GET", "/api/jobs/{id}", job="queued"),
    Route("GET", "/api/jobs/{id}/events", job="queued"),
    Route("POST", "/api/jobs/{id}/cancel", job="queued", write=True),
    Route("POST", "/api/jobs/{id}/retry", job="failed", write=True),
    Route("POST", "/api/jobs/{id}/resubmit", job="queued", write=True, ok=201),
    Route(
        "POST", "/api/jobs/{id}/complete", job="queued", body={"output": {"total": 1}}, write=True
    ),
    Route("POST", "/api/jobs/{id}/fail", job="queued", body={"reason": "r"}, write=True),
    Route("POST", "/api/jobs/{id}/move", job="queued", body={"priority": 3}, write=True),
    Route("POST", "/api/jobs/{id}/report", job="tracked", body={"progress": 0.5}, write=True),
    # Someone else's jobs by id are skipped, not revealed.
    Route(
        "POST", "/api/jobs/bulk/cancel", job="queued", body={"ids": ["{id}"]}, write=True, other=200
    ),
    Route(
        "POST",
        "/api/jobs/bulk/retry",
        body={"created_after": "2020-01-01T00:00:00Z", "dry_run": True},
        write=True,
    ),
    Route("GET", "/api/types"),
    Route("GET", "/api/stats"),
    Route("GET", "/api/queues"),
    Route("GET", "/api/workers"),
    Route("GET", "/api/schedules"),
    Route("GET", "/api/plugins"),
    Route(
        "POST",
        "/api/worker/run",
        params={"queue": "nothing-here", "max_seconds": 1},
        admin_only=True,
    ),
    Route("GET", "/api/events", params={"job_id": "{id}"}, job="queued", stream=True),
    Route("GET", "/api/events", stream=True),
]


def _fill(value: Any, job_id: int | None) -> Any:
    if value == "{id}":
        return job_id
    if isinstance(value, dict):
        return {k: _fill(v, job_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, job_id) for v in value]
    return value


def call(server: Server, route: Route, caller: str) -> tuple[int, Any]:
    job_id = new_job(server, route.job) if route.job else None
    path = route.path.replace("{id}", str(job_id))
    with httpx.Client(base_url=server.base_url, headers=headers(caller), timeout=30) as client:
        request = client.build_request(
            route.method,
            path,
            json=_fill(route.body, job_id) if route.body is not None else None,
            params=_fill(route.params, job_id),
        )
        response = client.send(request, stream=route.stream)
        try:
            if route.stream and response.status_code == 200:
                assert response.headers["content-type"].startswith("text/event-stream")
                return response.status_code, None
            response.read()
            return response.status_code, response.json()
        finally:
            response.close()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path} {r.params or ''}")
def test_every_route_for_every_caller(server: Server, route: Route) -> None:
    for caller in CALLERS:
        status, body = call(server, route, caller)
        expected = route.expected(caller)
        assert status == expected, (caller, body)
        if status >= 400:
            assert body["error"]["type"] in {"Unauthorized", "Forbidden", "JobNotFound"}
        if status == 401:
            assert "tok-" not in str(body)
        if route.path == "/api/jobs/bulk/cancel" and caller == "other":
            assert body["changed"] == [] and len(body["skipped"]) == 1


def test_a_viewer_and_an_admin_see_every_job(server: Server) -> None:
    job_id = new_job(server, "queued")
    for who in ("viewer", "admin"):
        with server.client(who) as client:
            assert client.get(f"/api/jobs/{job_id}").json()["owner"] == "alice"
            listed = client.get("/api/jobs", params={"owner": "alice", "limit": 1000}).json()
            assert job_id in [j["id"] for j in listed["jobs"]]


def test_the_admin_acts_on_anyones_job_as_itself(server: Server) -> None:
    job_id = new_job(server, "queued")
    with server.client("admin") as admin:
        assert admin.post(f"/api/jobs/{job_id}/cancel").status_code == 200
        events = admin.get(f"/api/jobs/{job_id}/events").json()["events"]
    assert events[-1]["actor"] == "zed"


def test_tokens_never_reach_the_log(server: Server) -> None:
    with server.client("alice") as alice:
        alice.get("/api/jobs")
    text = server.log.read_text()
    assert "GET /api/jobs" in text  # the access log is on
    for token, _, _ in TOKENS.values():
        assert token not in text


def test_token_formats() -> None:
    pairs = parse_tokens(
        "t1 alice user, t2 bob admin\n# a comment\nt3 vic viewer  # trailing\n\n", source="x"
    )
    assert pairs == [
        ("t1", Principal("alice", Role.USER)),
        ("t2", Principal("bob", Role.ADMIN)),
        ("t3", Principal("vic", Role.VIEWER)),
    ]
    with pytest.raises(ConfigurationError, match="line 1: expected 'TOKEN USER ROLE'"):
        parse_tokens("t1 alice", source="x")
    with pytest.raises(ConfigurationError, match="unknown role 'root'") as info:
        parse_tokens("secret-token alice root", source="x")
    assert "secret-token" not in str(info.value)


def test_token_auth_keeps_digests_only(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# tokens\nfile-token carol admin\n")
    auth = TokenAuth.from_settings(
        load_settings(api_tokens="env-token dave user", api_tokens_file=str(path))
    )
    assert len(auth) == 2
    assert auth.resolve("file-token") == Principal("carol", Role.ADMIN)
    assert auth.resolve("env-token") == Principal("dave", Role.USER)
    assert auth.resolve("env-toke") is None
    assert "env-token" not in repr(vars(auth))
    with pytest.raises(ConfigurationError, match="cannot read"):
        TokenAuth.from_settings(load_settings(api_tokens_file=str(tmp_path / "missing")))


def _serve(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    return subprocess.run(
        [sys.executable, "-m", "brains_jobs", "serve", "--database", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(**extra),
        cwd=ROOT,
    )


def test_serve_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    result = _serve(tmp_path, BRAINS_JOBS_API_TOKENS="")
    assert result.returncode == 2
    assert "no API tokens" in result.stderr
    result = _serve(tmp_path, "--insecure-no-auth", "--host", "0.0.0.0", BRAINS_JOBS_API_TOKENS="")
    assert result.returncode == 2
    assert "only with --host 127.0.0.1" in result.stderr


def test_serve_without_auth_on_loopback(tmp_path: Path) -> None:
    live = start_server(
        f"sqlite+aiosqlite:///{tmp_path / 'open.db'}",
        tmp_path,
        "--insecure-no-auth",
        BRAINS_JOBS_API_TOKENS="",
    )
    try:
        response = httpx.post(
            f"{live.base_url}/api/worker/run", params={"max_seconds": 1, "queue": "none"}
        )
        assert response.status_code == 200
        assert httpx.get(f"{live.base_url}/api/jobs").status_code == 200
    finally:
        stop_server(live)


def test_the_command_line_works_without_the_web_extra(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['fastapi'] = sys.modules['uvicorn'] = None; "
    code = blocked + "from brains_jobs.cli import main; sys.argv[1:] = sys.argv[1:]; main()"
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    for args, status in ((["--help"], 0), (["serve", "--db", url], 2)):
        result = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env(),
            cwd=ROOT,
        )
        assert result.returncode == status, result.stderr
    assert "needs the web extra: pip install 'brains-jobs[web]'" in result.stderr
