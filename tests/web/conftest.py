"""A live HTTP API for the web tests: `brains-jobs serve` in a subprocess on 127.0.0.1,
once per store (SQLite, PostgreSQL) for the whole package, with a token per role.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import empty_database

pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "tests" / "support" / "site"

#: name -> (token, user, role); `sse` is a user whose jobs only the SSE test makes.
TOKENS = {
    "alice": ("tok-alice-4f1c", "alice", "user"),
    "bob": ("tok-bob-9a2e", "bob", "user"),
    "viewer": ("tok-viewer-77d0", "vic", "viewer"),
    "admin": ("tok-admin-3b5a", "zed", "admin"),
    "sse": ("tok-sse-c0de", "sse-user", "user"),
}


def env(**extra: str) -> dict[str, str]:
    """The environment of a server or worker subprocess: the test job types importable,
    only the test plugin among the installed ones, the tokens.
    """
    result = dict(os.environ)
    result["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(SITE), result.get("PYTHONPATH", "")])
    result["BRAINS_JOBS_PLUGINS_ALLOW"] = "testplugin"
    result["BRAINS_JOBS_API_TOKENS"] = ", ".join(
        f"{token} {user} {role}" for token, user, role in TOKENS.values()
    )
    result.pop("BRAINS_JOBS_API_TOKENS_FILE", None)
    result.update(extra)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `brains-jobs serve`."""

    base_url: str
    database_url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, who: str | None = "admin", **kwargs: object) -> httpx.Client:
        """A client with the token of `who` (None: no token)."""
        headers = {} if who is None else {"Authorization": f"Bearer {TOKENS[who][0]}"}
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)  # type: ignore[arg-type]


def start_server(database_url: str, tmp: Path, *args: str, **extra: str) -> Server:
    """Start a server and wait until /healthz answers."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    out = open(log, "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brains_jobs",
            "serve",
            "--database",
            database_url,
            "--plugin",
            "tests.support.jobs",
            "--port",
            str(port),
            "--heartbeat",
            "0.5",
            "--log-level",
            "info",
            *args,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env(**extra),
        cwd=ROOT,
    )
    out.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503):
                return Server(base, database_url, proc, log)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start: {log.read_text()}")
        time.sleep(0.1)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)


@pytest.fixture(
    scope="package", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database on each store, for the whole package."""
    with empty_database(request.param, tmp_path_factory.mktemp("web"), "bj_web") as url:
        yield url


@pytest.fixture(scope="package")
def server(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The API on each store, shared by the package's tests."""
    live = start_server(store_url, tmp_path_factory.mktemp("server"))
    yield live
    stop_server(live)
    errors = [line for line in live.log.read_text().splitlines() if "Traceback" in line]
    assert not errors, live.log.read_text()
