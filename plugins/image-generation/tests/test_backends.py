"""backends.py: the local backend, and the OpenAI-compatible one against a real local server."""

from __future__ import annotations

import io
import os
import socket

import pytest
from PIL import Image

from brains_jobs_image_generation.backends import (
    LocalBackend,
    OpenAIImagesBackend,
    backend_for,
    convert_image,
)
from brains_jobs_image_generation.errors import PermanentImageError, RetryableImageError
from brains_jobs_image_generation.render import ImageSpec, render_local

pytestmark = pytest.mark.anyio


async def test_local_backend_matches_the_renderer() -> None:
    spec = ImageSpec("a cat", 64, 48, seed=5, format="webp", style="geometric")
    image = await LocalBackend().generate(spec)
    assert image == render_local(spec)


async def test_openai_backend_speaks_the_protocol(images_env) -> None:
    backend = backend_for("openai")
    assert isinstance(backend, OpenAIImagesBackend)
    image = await backend.generate(ImageSpec("a cat", 64, 32, format="png"))
    [request] = images_env.requests
    assert request["path"] == "/v1/images/generations"
    assert request["auth"] == "Bearer test-key"
    assert request["body"] == {
        "model": "test-model",
        "prompt": "a cat",
        "n": 1,
        "size": "64x32",
        "response_format": "b64_json",
    }
    assert (image.format, image.width, image.height) == ("png", 64, 32)
    with Image.open(io.BytesIO(image.data)) as png:
        assert png.format == "PNG"
        assert png.getpixel((0, 0)) == (255, 0, 0)
        assert png.getpixel((63, 0)) == (0, 0, 255)


async def test_openai_backend_converts_to_the_requested_format(images_env) -> None:
    image = await backend_for("openai").generate(ImageSpec("a cat", 40, 40, format="jpeg"))
    with Image.open(io.BytesIO(image.data)) as jpeg:
        assert jpeg.format == "JPEG"
        red = jpeg.getpixel((2, 20))
        assert red[0] > 200 and red[2] < 60


async def test_500_is_retryable(images_env) -> None:
    with pytest.raises(
        RetryableImageError, match=r"500 Internal Server Error .*: The server had an error"
    ):
        await backend_for("openai").generate(ImageSpec("fail-500", 32, 32))


async def test_400_is_permanent(images_env) -> None:
    with pytest.raises(
        PermanentImageError, match=r"400 Bad Request .*rejected by the safety system"
    ):
        await backend_for("openai").generate(ImageSpec("fail-400", 32, 32))


async def test_wrong_key_is_permanent(images_server) -> None:
    backend = OpenAIImagesBackend(api_key="wrong", base_url=images_server.base_url + "/")
    with pytest.raises(PermanentImageError, match=r"401 Unauthorized .*Incorrect API key"):
        await backend.generate(ImageSpec("a cat", 32, 32))


async def test_answer_without_image_is_retryable(images_env) -> None:
    with pytest.raises(RetryableImageError, match=r"no image in data\[0\].b64_json"):
        await backend_for("openai").generate(ImageSpec("no-image", 32, 32))


async def test_answer_that_is_not_an_image_is_permanent(images_env) -> None:
    with pytest.raises(PermanentImageError, match="not a readable image"):
        await backend_for("openai").generate(ImageSpec("not-an-image", 32, 32))


async def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIImagesBackend(api_key="k", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(RetryableImageError, match="could not reach"):
        await backend.generate(ImageSpec("a cat", 32, 32))


def test_missing_api_key_is_permanent(monkeypatch) -> None:
    monkeypatch.delenv("BRAINS_JOBS_IMAGES_API_KEY", raising=False)
    with pytest.raises(PermanentImageError, match="set BRAINS_JOBS_IMAGES_API_KEY"):
        backend_for("openai")


def test_env_defaults() -> None:
    backend = OpenAIImagesBackend.from_env({"BRAINS_JOBS_IMAGES_API_KEY": "k"})
    assert backend.endpoint == "https://api.openai.com/v1/images/generations"
    assert backend.model == "dall-e-3"
    assert backend_for("local", env=dict(os.environ)).name == "local"


def test_convert_keeps_same_format_bytes_and_rejects_junk() -> None:
    png = render_local(ImageSpec("x", 20, 10)).data
    assert convert_image(png, "png").data == png
    webp = convert_image(png, "webp")
    assert webp.data[:4] == b"RIFF" and (webp.width, webp.height) == (20, 10)
    with pytest.raises(PermanentImageError):
        convert_image(b"GIF89a-nope", "png")
