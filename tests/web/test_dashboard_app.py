"""The dashboard in process: what ships with the package, and the options of
`create_app` that `brains-jobs serve` does not set (a shared session secret, trusted
origins, a resolver other than tokens).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_templates_and_static_files_ship_with_the_package() -> None:
    from importlib.resources import files

    package = files("brains_jobs.web.dashboard")
    templates = {p.name for p in (package / "templates").iterdir()}
    assert {"base.html", "job.html", "jobs.html", "overview.html", "login.html"} <= templates
    assert {"app.css", "app.js"} <= {p.name for p in (package / "static").iterdir()}


@pytest.mark.anyio
async def test_a_shared_secret_and_trusted_origins(tmp_path: Path) -> None:
    """In process: two apps with one `session_secret` know each other's sessions; a
    trusted origin may post; with `insecure_no_auth` no sign-in is needed, but forms
    still need the CSRF token.
    """
    import brains_jobs as bj
    from brains_jobs.web import TokenAuth, create_app, insecure_no_auth
    from brains_jobs.web.auth import parse_tokens

    tokens = TokenAuth(parse_tokens("tok-one-123 ann admin", source="test"))
    secret = "s" * 32
    async with bj.Runtime(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}") as rt:
        first = create_app(rt, auth=tokens, session_secret=secret)
        second = create_app(
            rt, auth=tokens, session_secret=secret, trusted_origins=["https://jobs.example"]
        )
        local = create_app(rt, auth=insecure_no_auth)
        base = "http://test"
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(first), base_url=base) as one,
            httpx.AsyncClient(transport=httpx.ASGITransport(second), base_url=base) as two,
            httpx.AsyncClient(transport=httpx.ASGITransport(local), base_url=base) as mine,
        ):
            page = await one.get("/dashboard/login")
            csrf = CSRF.search(page.text)
            assert csrf
            signed = await one.post(
                "/dashboard/login", data={"csrf": csrf.group(1), "token": "tok-one-123"}
            )
            assert signed.status_code == 303
            two.cookies.set("bj_session", one.cookies["bj_session"])
            overview = await two.get("/dashboard/")
            assert overview.status_code == 200 and "ann" in overview.text
            token = CSRF.search(overview.text)
            assert token
            form = {"csrf": token.group(1), "type": "nope", "input": "{}"}
            trusted = {"Origin": "https://jobs.example"}
            made = await two.post("/dashboard/jobs/new", data=form, headers=trusted)
            assert made.status_code == 422  # past the origin and CSRF checks: unknown type
            refused = await one.post("/dashboard/jobs/new", data=form, headers=trusted)
            assert refused.status_code == 403

            home = await mine.get("/dashboard/jobs")
            assert home.status_code == 200 and "local" in home.text
            forged = await mine.post("/dashboard/jobs/1/cancel", data={"csrf": "x"})
            assert forged.status_code == 403
            token = CSRF.search(home.text)
            assert token
            missing = await mine.post("/dashboard/jobs/1/cancel", data={"csrf": token.group(1)})
            assert missing.status_code == 404  # past the CSRF check: there is no job 1
