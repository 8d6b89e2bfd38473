"""Image backends: one small protocol, a local Pillow renderer and an OpenAI-compatible client.

Choose one with `backend_for(name)`; the OpenAI-compatible backend reads its settings
from the environment:

- `BRAINS_JOBS_IMAGES_API_KEY`: bearer token (required)
- `BRAINS_JOBS_IMAGES_BASE_URL`: server root, default `https://api.openai.com`
- `BRAINS_JOBS_IMAGES_MODEL`: model name sent with each request, default `dall-e-3`
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from collections.abc import Mapping
from typing import Final, Literal, Protocol, get_args

import anyio.to_thread
import httpx
from PIL import Image, UnidentifiedImageError

from .errors import PermanentImageError, RetryableImageError
from .render import GeneratedImage, ImageFormat, ImageSpec, encode_image, render_local

BackendName = Literal["local", "openai"]
BACKENDS: Final[tuple[BackendName, ...]] = get_args(BackendName)
API_KEY_ENV: Final = "BRAINS_JOBS_IMAGES_API_KEY"
BASE_URL_ENV: Final = "BRAINS_JOBS_IMAGES_BASE_URL"
MODEL_ENV: Final = "BRAINS_JOBS_IMAGES_MODEL"
DEFAULT_BASE_URL: Final = "https://api.openai.com"
DEFAULT_MODEL: Final = "dall-e-3"
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
_PIL_FORMATS: Final[dict[str, ImageFormat]] = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
_RETRYABLE_STATUS: Final = frozenset({408, 409, 425, 429})


class ImageBackend(Protocol):
    """Something that turns an `ImageSpec` into encoded image bytes."""

    @property
    def name(self) -> str:
        """Short name recorded with each generated image."""
        ...

    async def generate(self, spec: ImageSpec) -> GeneratedImage:
        """Produce the image; raise `PermanentImageError` or `RetryableImageError`."""
        ...


class LocalBackend:
    """Renders offline with Pillow (see `render.py`); deterministic for equal specs."""

    name = "local"

    async def generate(self, spec: ImageSpec) -> GeneratedImage:
        """Render in a worker thread: drawing a 2048x2048 image must not stall the loop."""
        return await anyio.to_thread.run_sync(render_local, spec)


class OpenAIImagesBackend:
    """Client of an OpenAI-compatible `POST /v1/images/generations` endpoint.

    Asks for one image as `b64_json`, checks that the answer is an image, and re-encodes
    it when the server's format differs from the requested one. The reported size is the
    size of the image received (providers support a few sizes only).
    """

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        timeout: float = 120.0,
    ) -> None:
        if not api_key:
            raise PermanentImageError(f"no API key: set {API_KEY_ENV}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OpenAIImagesBackend:
        """Build from `BRAINS_JOBS_IMAGES_*` variables of `env` (default: `os.environ`)."""
        env = os.environ if env is None else env
        return cls(
            api_key=env.get(API_KEY_ENV, ""),
            base_url=env.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
            model=env.get(MODEL_ENV) or DEFAULT_MODEL,
        )

    @property
    def endpoint(self) -> str:
        """The URL requests go to."""
        return f"{self.base_url}/v1/images/generations"

    async def generate(self, spec: ImageSpec) -> GeneratedImage:
        """POST the prompt, decode the b64_json answer, convert to `spec.format`."""
        payload = {
            "model": self.model,
            "prompt": spec.prompt,
            "n": 1,
            "size": f"{spec.width}x{spec.height}",
            "response_format": "b64_json",
        }
        headers = {"Authorization": f"Bearer {self._api_key}"}
        try:
            async with (
                httpx.AsyncClient(timeout=self._timeout) as client,
                client.stream("POST", self.endpoint, json=payload, headers=headers) as response,
            ):
                body = await _read_limited(self.endpoint, response, MAX_RESPONSE_BYTES)
        except httpx.TimeoutException as exc:
            raise RetryableImageError(f"timed out waiting for {self.endpoint}") from exc
        except httpx.TransportError as exc:
            raise RetryableImageError(f"could not reach {self.endpoint}: {exc!r}") from exc
        _check_status(self.endpoint, response.status_code, response.reason_phrase, body)
        return convert_image(_decode_answer(self.endpoint, body), spec.format)


def backend_for(name: BackendName, env: Mapping[str, str] | None = None) -> ImageBackend:
    """The backend called `name`, configured from `env` (default: `os.environ`)."""
    if name == "local":
        return LocalBackend()
    if name == "openai":
        return OpenAIImagesBackend.from_env(env)
    raise PermanentImageError(f"unknown image backend {name!r}; known: {', '.join(BACKENDS)}")


def convert_image(data: bytes, format: ImageFormat) -> GeneratedImage:
    """Check that `data` is a PNG, JPEG or WebP image and return it in `format`.

    Bytes already in `format` are kept as they are.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            source = _PIL_FORMATS.get(image.format or "")
            if source == format:
                return GeneratedImage(data, format, image.width, image.height)
            pixels: Image.Image = image
            if image.mode not in {"RGB", "RGBA", "L"} or (
                format == "jpeg" and image.mode == "RGBA"
            ):
                pixels = image.convert("RGB")
            return GeneratedImage(encode_image(pixels, format), format, image.width, image.height)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise PermanentImageError(f"the backend's answer is not a readable image: {exc}") from exc


async def _read_limited(endpoint: str, response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise PermanentImageError(f"answer from {endpoint} is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_status(endpoint: str, status: int, reason: str, body: bytes) -> None:
    if status < 300:
        return
    detail = _error_message(body)
    message = f"{status} {reason} from {endpoint}" + (f": {detail}" if detail else "")
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise RetryableImageError(message)
    raise PermanentImageError(message)


def _error_message(body: bytes) -> str:
    """The `error.message` of an OpenAI-style error body, else the start of the body."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", errors="replace").strip()
    if isinstance(decoded, dict):
        error = decoded.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
    return ""


def _decode_answer(endpoint: str, body: bytes) -> bytes:
    # A 200 whose body we cannot read is most likely a proxy or a half-deployed server:
    # worth another attempt.
    try:
        item = json.loads(body)["data"][0]
        encoded = item["b64_json"]
        if not isinstance(encoded, str):
            raise TypeError("b64_json is not a string")
        return base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise RetryableImageError(
            f"unexpected answer from {endpoint}: no image in data[0].b64_json ({exc!r})"
        ) from exc
