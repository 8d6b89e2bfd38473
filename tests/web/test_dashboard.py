"""The dashboard over HTTP, against a real `brains-jobs serve` on each store: signing in
and out, the session cookie, CSRF and origin checks (on the dashboard's forms and on the
API used with the cookie), the roles on every page and action, artifacts, and escaping.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import empty_database
from tests.web.conftest import TOKENS, Server, start_server, stop_server

PAGES = ["/", "/jobs", "/workers", "/queues", "/schedules", "/limits", "/plugins"]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def dash(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with the dashboard's test job types and an artifact directory."""
    tmp = tmp_path_factory.mktemp("dash")
    with empty_database(request.param, tmp, "bj_dash") as url:
        live = start_server(
            url,
            tmp,
            "--plugin",
            "tests.web.dashboard_jobs",
            BRAINS_JOBS_ARTIFACTS=str(tmp / "artifacts"),
        )
        yield live
        stop_server(live)
    text = live.log.read_text()
    assert "Traceback" not in text, text
    for token, _, _ in TOKENS.values():
        assert token not in text


class Browser:
    """A cookie-keeping client that signs in through the form, like a browser."""

    def __init__(self, server: Server, **headers: str) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base_url, timeout=30, headers=headers)
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.get("/dashboard" + path, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        fields = {"csrf": self.csrf, **(data or {})}
        return self.http.post("/dashboard" + path, data=fields, **kwargs)

    def sign_in(self, who: str) -> Browser:
        self.get("/login")
        response = self.post("/login", {"token": TOKENS[who][0], "user": TOKENS[who][1]})
        assert response.status_code == 303, response.text
        return self

    def close(self) -> None:
        self.http.close()


_open: list[Browser] = []


@pytest.fixture(autouse=True)
def _close_browsers() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def new_browser(server: Server, **headers: str) -> Browser:
    """A new browser, closed after the test."""
    made = Browser(server, **headers)
    _open.append(made)
    return made


def signed_in(server: Server, who: str) -> Browser:
    return new_browser(server).sign_in(who)


def alice_job(server: Server, **body: Any) -> int:
    """A job of alice's in a queue no worker takes."""
    with server.client("alice") as alice:
        payload = {"type": "noop", "input": {"a": 1}, "queue": "parked", **body}
        response = alice.post("/api/jobs", json=payload)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])


def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_it(dash: Server) -> None:
    browser = new_browser(dash)
    first = browser.get("/")
    assert first.status_code == 303 and first.headers["location"].startswith("/dashboard/login")
    page = browser.get("/login")
    assert page.status_code == 200 and browser.csrf
    refused = browser.post("/login", {"token": "not-a-token"})
    assert refused.status_code == 401 and "Unknown user or token" in refused.text
    wrong_user = browser.post("/login", {"token": TOKENS["alice"][0], "user": "bob"})
    assert wrong_user.status_code == 401

    response = browser.post("/login", {"token": TOKENS["alice"][0], "next": "/dashboard/jobs"})
    assert response.status_code == 303 and response.headers["location"] == "/dashboard/jobs"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("bj_session=")
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http
    assert TOKENS["alice"][0] not in cookie

    overview = browser.get("/")
    assert overview.status_code == 200 and "alice" in overview.text
    assert TOKENS["alice"][0] not in overview.text
    assert browser.get("/login").status_code == 303  # already signed in

    out = browser.post("/logout")
    assert out.status_code == 303 and "notice=signed-out" in out.headers["location"]
    assert (
        'bj_session=""' in out.headers["set-cookie"]
        or "max-age=0" in out.headers["set-cookie"].lower()
    )
    assert browser.get("/").status_code == 303


def test_a_forged_or_open_redirect_session_is_refused(dash: Server) -> None:
    browser = signed_in(dash, "admin")
    value = browser.http.cookies["bj_session"]
    body, _, mac = value.partition(".")
    browser.http.cookies.set("bj_session", body + "." + mac[::-1])
    assert browser.get("/").status_code == 303
    evil = new_browser(dash)
    evil.get("/login")
    response = evil.post("/login", {"token": TOKENS["admin"][0], "next": "//evil.example/x"})
    assert response.headers["location"] == "/dashboard/"


def test_the_cookie_is_secure_over_https(dash: Server) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a proxy on the same host.
    host = dash.base_url.removeprefix("http://")
    browser = new_browser(dash, **{"X-Forwarded-Proto": "https", "Origin": f"https://{host}"})
    page = browser.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    # The test talks plain http to the server behind the "proxy": carry the cookie by hand.
    value = page.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    browser.http.cookies.set("bj_session", value)
    response = browser.post("/login", {"token": TOKENS["admin"][0]})
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()


def test_state_changes_need_the_sessions_csrf_token_and_origin(dash: Server) -> None:
    job_id = alice_job(dash)
    browser = signed_in(dash, "alice")
    browser.get(f"/jobs/{job_id}")
    other = signed_in(dash, "alice")
    other.get("/")
    url = f"/jobs/{job_id}/move"
    host = dash.base_url
    assert browser.post(url, {"csrf": "", "queue": "x"}).status_code == 403
    assert browser.post(url, {"csrf": "forged", "queue": "x"}).status_code == 403
    assert browser.post(url, {"csrf": other.csrf, "queue": "x"}).status_code == 403
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
    ):
        refused = browser.post(url, {"queue": "x"}, headers=headers)
        assert refused.status_code == 403 and "cross-origin" in refused.text
    ok = browser.post(url, {"queue": "elsewhere"}, headers={"Origin": host})
    assert ok.status_code == 303
    # A sign-in from another site is refused too.
    fresh = new_browser(dash)
    fresh.get("/login")
    login = fresh.post(
        "/login", {"token": TOKENS["alice"][0]}, headers={"Origin": "https://evil.example"}
    )
    assert login.status_code == 403

    # The API takes the cookie, and checks the CSRF token of its writes.
    api = browser.http
    assert api.get(f"/api/jobs/{job_id}").json()["queue"] == "elsewhere"
    body = {"type": "noop", "input": {"a": 2}, "queue": "parked"}
    assert api.post("/api/jobs", json=body).status_code == 403
    wrong = api.post("/api/jobs", json=body, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "CsrfFailed"
    foreign = {"X-CSRF-Token": browser.csrf, "Origin": "https://evil.example"}
    assert api.post("/api/jobs", json=body, headers=foreign).status_code == 403
    made = api.post("/api/jobs", json=body, headers={"X-CSRF-Token": browser.csrf})
    assert made.status_code == 201 and made.json()["owner"] == "alice"
    # A Bearer token needs no CSRF token, cookie or not.
    bearer = {"Authorization": f"Bearer {TOKENS['alice'][0]}"}
    assert api.post("/api/jobs", json=body, headers=bearer).status_code == 201
    # Server-sent events follow the cookie's principal.
    with api.stream("GET", f"/api/events?job_id={job_id}&after=0") as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "retry: 1000"


def test_every_page_for_every_role(dash: Server) -> None:
    job_id = alice_job(dash)
    anonymous = new_browser(dash)
    for path in [*PAGES, f"/jobs/{job_id}"]:
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert "/dashboard/login?next=" in response.headers["location"]
    for who in ("alice", "bob", "viewer", "admin"):
        browser = signed_in(dash, who)
        for path in PAGES:
            response = browser.get(path)
            assert response.status_code == 200, (who, path, response.text)
            assert response.headers["content-security-policy"].startswith("default-src 'none'")
            assert "'unsafe-inline'" not in response.headers["content-security-policy"]
            assert response.headers["x-frame-options"] == "DENY"
        job_page = browser.get(f"/jobs/{job_id}")
        listing = browser.get("/jobs?queue=parked").text
        if who == "bob":
            assert job_page.status_code == 404
            assert f'href="/dashboard/jobs/{job_id}"' not in listing
            continue
        assert job_page.status_code == 200
        assert f'href="/dashboard/jobs/{job_id}"' in listing
        buttons = 'id="action-cancel"' in job_page.text
        assert buttons is (who != "viewer"), who
        assert ('id="enqueue"' in listing) is (who != "viewer")


def test_actions_by_role(dash: Server) -> None:
    job_id = alice_job(dash)
    viewer, bob = signed_in(dash, "viewer"), signed_in(dash, "bob")
    alice, admin = signed_in(dash, "alice"), signed_in(dash, "admin")
    for browser in (viewer, bob, alice, admin):
        browser.get("/")
    assert viewer.post(f"/jobs/{job_id}/cancel").status_code == 403
    assert viewer.post("/jobs/new", {"type": "noop", "input": "{}"}).status_code == 403
    assert (
        viewer.post("/jobs/bulk", {"scope": "ids", "ids": job_id, "action": "cancel"}).status_code
        == 403
    )
    assert bob.post(f"/jobs/{job_id}/cancel").status_code == 404
    skipped = bob.post(
        "/jobs/bulk", {"scope": "ids", "ids": job_id, "action": "cancel", "confirm": "1"}
    )
    assert skipped.status_code == 200 and "0</strong> job(s) cancelled; 1 skipped" in skipped.text

    moved = alice.post(f"/jobs/{job_id}/move", {"queue": "parked2", "priority": "5"})
    assert moved.status_code == 303
    cancelled = admin.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 303 and cancelled.headers["location"].endswith(
        "notice=cancelled"
    )
    page = alice.get(f"/jobs/{job_id}")
    assert "Cancel requested." not in page.text  # the notice goes with the redirect only
    assert 'class="status status-cancelled"' in page.text and "by zed" in page.text
    retried = alice.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 303
    resubmitted = alice.post(f"/jobs/{job_id}/resubmit")
    assert resubmitted.status_code == 303
    new_id = int(resubmitted.headers["location"].split("/")[-1].split("?")[0])
    new_page = alice.get(f"/jobs/{new_id}")
    assert f'href="/dashboard/jobs/{job_id}"' in new_page.text  # the original
    failed = alice.post(f"/jobs/{new_id}/fail", {"reason": "by hand"})
    assert failed.status_code == 303
    completed = alice.post(f"/jobs/{new_id}/complete", {"output": '{"total": 3}'})
    assert completed.status_code == 303
    with dash.client("alice") as api:
        assert api.get(f"/api/jobs/{new_id}").json()["output"] == {"total": 3}
    bad = alice.post(f"/jobs/{new_id}/complete", {"output": '{"total": "x"}'})
    assert bad.status_code == 409 or bad.status_code == 422
    assert "<!doctype html>" in bad.text  # an error page, not JSON


def test_enqueue_and_bulk_with_a_dry_run_first(dash: Server) -> None:
    alice = signed_in(dash, "alice")
    alice.get("/jobs")
    tag = uuid.uuid4().hex[:8]
    ids = []
    for i in range(3):
        response = alice.post(
            "/jobs/new", {"type": "noop", "input": f'{{"a": {i}}}', "queue": f"q-{tag}"}
        )
        assert response.status_code == 303, response.text
        ids.append(int(response.headers["location"].split("/")[-1].split("?")[0]))
    invalid = alice.post("/jobs/new", {"type": "noop", "input": "{oops"})
    assert invalid.status_code == 422 and "not JSON" in invalid.text
    unknown = alice.post("/jobs/new", {"type": "nope", "input": "{}"})
    assert unknown.status_code == 422

    listing = alice.get(f"/jobs?queue=q-{tag}&limit=25")
    assert all(f'value="{i}" form="bulk-ids"' in listing.text for i in ids)
    page_one = alice.get(f"/jobs?queue=q-{tag}&limit=25")
    assert 'id="next-page"' not in page_one.text

    fields = {
        "scope": "filter",
        "queue": f"q-{tag}",
        "created_after": "2000-01-01T00:00",
        "action": "cancel",
    }
    dry = alice.post("/jobs/bulk", fields)
    assert (
        dry.status_code == 200
        and "Dry run" in dry.text
        and "3</strong> job(s) would be cancelled" in dry.text
    )
    assert 'id="bulk-confirm"' in dry.text
    with dash.client("alice") as api:
        assert api.get(f"/api/jobs/{ids[0]}").json()["status"] == "queued"
    done = alice.post("/jobs/bulk", {**fields, "confirm": "1"})
    assert "3</strong> job(s) cancelled" in done.text
    unbounded = alice.post(
        "/jobs/bulk", {"scope": "filter", "queue": f"q-{tag}", "action": "retry"}
    )
    assert unbounded.status_code == 422
    by_ids = alice.post(
        "/jobs/bulk", {"scope": "ids", "ids": ids[:2], "action": "retry", "confirm": "1"}
    )
    assert "2</strong> job(s) retried" in by_ids.text


def test_pages_of_jobs_with_a_cursor(dash: Server) -> None:
    admin = signed_in(dash, "admin")
    queue = f"page-{uuid.uuid4().hex[:8]}"
    ids = [alice_job(dash, queue=queue) for _ in range(30)]
    first = admin.get(f"/jobs?queue={queue}&limit=25")
    found = re.search(r'id="next-page"', first.text)
    assert found
    next_href = re.search(r'href="(/dashboard/jobs\?[^"]+)" id="next-page"', first.text)
    assert next_href
    second = admin.http.get(next_href.group(1).replace("&amp;", "&"))
    shown = {int(i) for i in re.findall(r'value="(\d+)" form="bulk-ids"', second.text)}
    assert shown == set(ids[:5])


def test_hostile_input_is_escaped(dash: Server) -> None:
    hostile = "<script>alert('x')</script>"
    job_id = alice_job(
        dash,
        input={"a": 1},
        metadata={"note": hostile, "<img src=x onerror=alert(1)>": 1},
        tags=["<b>bold</b>"],
    )
    with dash.client("alice") as api:
        response = api.post(f"/api/jobs/{job_id}/fail", json={"reason": hostile})
        assert response.status_code == 200
    alice = signed_in(dash, "alice")
    page = alice.get(f"/jobs/{job_id}").text
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    reflected = alice.get("/jobs", params={"queue": '"><script>alert(2)</script>'}).text
    assert "<script>alert(2)" not in reflected and "&#34;&gt;&lt;script&gt;" in reflected
    error = alice.post("/jobs/new", {"type": "<script>alert(3)</script>", "input": "{}"}).text
    assert "<script>alert(3)" not in error
    # Only the dashboard's own script is referenced by any page.
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/dashboard/static/app.js" defer>']
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", page)  # no inline event handler


def test_artifacts_are_served_to_those_who_see_the_job(dash: Server, tmp_path: Path) -> None:
    with dash.client("alice") as api:
        job_id = api.post(
            "/api/jobs", json={"type": "render", "input": {"title": "q3"}, "queue": "render-q"}
        ).json()["id"]
    with dash.client("admin") as admin:
        ran = admin.post("/api/worker/run", params={"max_seconds": 10, "queue": "render-q"})
        assert ran.status_code == 200 and ran.json()["processed"] >= 1
        assert admin.get(f"/api/jobs/{job_id}").json()["status"] == "succeeded"
    alice = signed_in(dash, "alice")
    page = alice.get(f"/jobs/{job_id}").text
    assert f'<img src="/dashboard/jobs/{job_id}/artifacts/0"' in page
    assert f'href="/dashboard/jobs/{job_id}/artifacts/1" download="q3.pdf"' in page
    assert "pages" in page  # usage
    image = alice.get(f"/jobs/{job_id}/artifacts/0")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG") and image.headers["content-disposition"].startswith(
        "inline"
    )
    assert "sandbox" in image.headers["content-security-policy"]
    pdf = signed_in(dash, "viewer").get(f"/jobs/{job_id}/artifacts/1")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith('attachment; filename="q3.pdf"')
    assert signed_in(dash, "bob").get(f"/jobs/{job_id}/artifacts/0").status_code == 404
    assert alice.get(f"/jobs/{job_id}/artifacts/2").status_code == 404
    # An output written by hand cannot point at another job's files.
    with dash.client("bob") as api:
        bob_job = api.post(
            "/api/jobs", json={"type": "render", "input": {}, "queue": "parked"}
        ).json()["id"]
        stolen = api.get(f"/api/jobs/{job_id}")
        assert stolen.status_code == 404
    with dash.client("alice") as api:
        output = api.get(f"/api/jobs/{job_id}").json()["output"]
    with dash.client("admin") as admin:
        forced = admin.post(f"/api/jobs/{bob_job}/complete", json={"output": output})
        assert forced.status_code == 200
    bob = signed_in(dash, "bob")
    bob_page = bob.get(f"/jobs/{bob_job}").text
    assert "stored with another job" in bob_page
    assert bob.get(f"/jobs/{bob_job}/artifacts/0").status_code == 404


def test_static_files_and_the_root(dash: Server) -> None:
    with httpx.Client(base_url=dash.base_url) as client:
        assert client.get("/").headers["location"] == "/dashboard/"
        css = client.get("/dashboard/static/app.css")
        assert css.status_code == 200 and "prefers-color-scheme" in css.text
        script = client.get("/dashboard/static/app.js")
        assert script.status_code == 200 and "EventSource" in script.text
        assert client.get("/api/jobs").status_code == 401  # the API still wants credentials
