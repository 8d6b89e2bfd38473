"""render.py: the local renderer, pure and deterministic."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageFont

from brains_jobs_image_generation.render import (
    FORMATS,
    STYLES,
    ImageSpec,
    composition_seed,
    render_image,
    render_local,
    wrap_text,
)

PROMPT = "A lighthouse on a cliff at dusk, oil on canvas"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_same_spec_same_bytes_and_a_real_image(style, fmt) -> None:
    spec = ImageSpec(PROMPT, 320, 200, seed=7, format=fmt, style=style)
    first, second = render_local(spec), render_local(spec)
    assert first.data == second.data
    assert first.sha256 == second.sha256
    with Image.open(io.BytesIO(first.data)) as image:
        assert image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
        assert image.size == (320, 200)
    assert first.content_type == f"image/{fmt}"
    assert (first.width, first.height) == (320, 200)


def test_seed_prompt_and_style_change_the_picture() -> None:
    base = render_local(ImageSpec(PROMPT, 128, 128, seed=1))
    assert render_local(ImageSpec(PROMPT, 128, 128, seed=2)).data != base.data
    assert render_local(ImageSpec(PROMPT + "!", 128, 128, seed=1)).data != base.data
    assert render_local(ImageSpec(PROMPT, 128, 128, seed=1, style="geometric")).data != base.data


def test_composition_seed_depends_on_both_inputs() -> None:
    assert composition_seed("a", 1) == composition_seed("a", 1)
    assert len({composition_seed("a", 1), composition_seed("a", 2), composition_seed("b", 1)}) == 3


def test_prompt_is_printed_on_the_image() -> None:
    with_text = render_image(ImageSpec("Hello there", 400, 300, seed=3, style="gradient"))
    without = render_image(ImageSpec("", 400, 300, seed=3, style="gradient"))
    band = with_text.crop((0, 240, 400, 300)).convert("L")
    empty_band = without.crop((0, 240, 400, 300)).convert("L")
    assert band.getextrema()[1] >= 240  # white glyphs
    assert empty_band.getextrema()[1] < 240  # no text: a gradient, no darkened band either


def test_mono_is_grey() -> None:
    red, green, blue = render_image(ImageSpec(PROMPT, 64, 64, style="mono")).split()
    assert ImageChops.difference(red, green).getextrema() == (0, 0)
    assert ImageChops.difference(green, blue).getextrema() == (0, 0)


@pytest.mark.parametrize("size", [(16, 16), (2048, 16), (16, 2048)])
def test_extreme_sizes(size) -> None:
    image = render_image(ImageSpec(PROMPT, *size))
    assert image.size == size


def test_wrap_text_fits_width_and_lines() -> None:
    font = ImageFont.load_default(size=20)
    lines = wrap_text("word " * 100, font, 200, max_lines=3)
    assert len(lines) == 3
    assert all(font.getlength(line) <= 200 for line in lines)
    assert lines[-1].endswith("...")
    assert wrap_text("short", font, 200, max_lines=3) == ["short"]
    assert wrap_text("   ", font, 200, max_lines=3) == []
    [long_word] = wrap_text("x" * 500, font, 100, max_lines=3)
    assert long_word.endswith("...") and font.getlength(long_word) <= 100
