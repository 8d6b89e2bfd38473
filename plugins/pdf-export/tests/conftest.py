"""Shared fixtures for the pdf-export tests."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_image() -> Callable[..., bytes]:
    """Encode a solid-colour image: `make_image("PNG", 40, 30, mode="RGBA")`."""

    def make(format: str = "PNG", width: int = 40, height: int = 30, mode: str = "RGB") -> bytes:
        image = Image.new(mode, (width, height), "teal")
        out = io.BytesIO()
        image.save(out, format)
        return out.getvalue()

    return make
