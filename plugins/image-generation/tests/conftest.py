"""An OpenAI-compatible images server on 127.0.0.1, written for these tests."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

API_KEY = "test-key"


def real_png(width: int, height: int) -> bytes:
    """A small real PNG: a red-to-blue split, so conversions can be checked by pixel."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class ImagesServer:
    """Speaks `POST /v1/images/generations`; the prompt picks a failure to act out.

    `fail-500`, `fail-400`, `no-image` (200 without b64_json), `not-an-image` (b64 of
    text); any other prompt gets a real PNG of the requested size.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                if self.path != "/v1/images/generations":
                    return self._json(404, {"error": {"message": "no such route"}})
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    return self._json(401, {"error": {"message": "Incorrect API key provided"}})
                prompt = body["prompt"]
                if prompt == "fail-500":
                    return self._json(500, {"error": {"message": "The server had an error"}})
                if prompt == "fail-400":
                    return self._json(
                        400,
                        {"error": {"message": "Your request was rejected by the safety system"}},
                    )
                if prompt == "no-image":
                    return self._json(200, {"created": 1, "data": [{"url": "https://x/y.png"}]})
                data = (
                    b"plain text"
                    if prompt == "not-an-image"
                    else real_png(*map(int, body["size"].split("x")))
                )
                self._json(
                    200, {"created": 1, "data": [{"b64_json": base64.b64encode(data).decode()}]}
                )

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def hits(self, prompt: str) -> int:
        return sum(1 for r in self.requests if r["body"].get("prompt") == prompt)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def images_server() -> Iterator[ImagesServer]:
    server = ImagesServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(5)


@pytest.fixture
def images_env(images_server: ImagesServer, monkeypatch: pytest.MonkeyPatch) -> ImagesServer:
    """Point the openai backend at the local server through its environment variables."""
    monkeypatch.setenv("BRAINS_JOBS_IMAGES_API_KEY", API_KEY)
    monkeypatch.setenv("BRAINS_JOBS_IMAGES_BASE_URL", images_server.base_url)
    monkeypatch.setenv("BRAINS_JOBS_IMAGES_MODEL", "test-model")
    return images_server
