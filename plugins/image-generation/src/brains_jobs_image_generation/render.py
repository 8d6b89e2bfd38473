"""The local renderer: a deterministic picture for a prompt and seed, drawn with Pillow.

Nothing here is a model. The prompt and seed are hashed; the hash drives a random
generator that picks colours, angles and shapes; the style picks how they are drawn;
the prompt is printed across the bottom. The same prompt, seed, style, size and format
give the same bytes (for a given Pillow build).
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, get_args

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

ImageFormat = Literal["png", "jpeg", "webp"]
Style = Literal["abstract", "gradient", "geometric", "mono"]
STYLES: Final[tuple[Style, ...]] = get_args(Style)
FORMATS: Final[tuple[ImageFormat, ...]] = get_args(ImageFormat)
CONTENT_TYPES: Final[dict[ImageFormat, str]] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
MIN_SIDE: Final = 16
MAX_SIDE: Final = 2048

RGB = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """What to draw: the backend-independent description of one image."""

    prompt: str
    width: int
    height: int
    seed: int = 0
    format: ImageFormat = "png"
    style: Style = "abstract"


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """Encoded image bytes and what they are."""

    data: bytes
    format: ImageFormat
    width: int
    height: int

    @property
    def content_type(self) -> str:
        """The MIME type of `data`."""
        return CONTENT_TYPES[self.format]

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of `data`."""
        return hashlib.sha256(self.data).hexdigest()


def composition_seed(prompt: str, seed: int) -> int:
    """A 256-bit number derived from prompt and seed; it drives every random choice."""
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest, "big")


def render_local(spec: ImageSpec) -> GeneratedImage:
    """Draw `spec` and encode it; deterministic for equal specs."""
    image = render_image(spec)
    return GeneratedImage(
        data=encode_image(image, spec.format),
        format=spec.format,
        width=image.width,
        height=image.height,
    )


def render_image(spec: ImageSpec) -> Image.Image:
    """Draw `spec` as an RGB Pillow image of exactly `spec.width` x `spec.height`."""
    rng = random.Random(composition_seed(spec.prompt, spec.seed))
    size = (spec.width, spec.height)
    image = _PAINTERS[spec.style](rng, size)
    _print_prompt(image, spec.prompt)
    return image


def encode_image(image: Image.Image, format: ImageFormat) -> bytes:
    """Encode `image` without metadata, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    if format == "png":
        image.save(buffer, "PNG", optimize=False, compress_level=6)
    elif format == "jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=90, optimize=False)
    else:
        image.save(buffer, "WEBP", quality=90, method=4)
    return buffer.getvalue()


# -- painters: one per style ---------------------------------------------------------


def _palette(rng: random.Random, count: int, saturation: float, value: float) -> list[RGB]:
    base = rng.random()
    spread = rng.uniform(0.08, 0.4)
    colours = []
    for i in range(count):
        hue = (base + i * spread + rng.uniform(-0.03, 0.03)) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, saturation, value * rng.uniform(0.75, 1.0))
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def _linear_gradient(rng: random.Random, size: tuple[int, int], colours: list[RGB]) -> Image.Image:
    ramp = Image.linear_gradient("L").rotate(
        rng.uniform(0, 360), resample=Image.Resampling.BICUBIC, expand=True
    )
    # The central 180x180 square of the rotated 256x256 ramp is all ramp, never corner.
    cx, cy = ramp.width // 2, ramp.height // 2
    gray = ramp.crop((cx - 90, cy - 90, cx + 90, cy + 90)).resize(size, Image.Resampling.BICUBIC)
    return ImageOps.colorize(gray, black=colours[0], white=colours[1], mid=colours[2])


def _paint_gradient(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    return _linear_gradient(rng, size, _palette(rng, 3, 0.75, 1.0))


def _paint_abstract(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    colours = _palette(rng, 6, 0.65, 1.0)
    image = _linear_gradient(rng, size, colours[:3])
    # Soft blobs: drawn small, blurred, scaled up; cheaper than blurring a big canvas.
    small = (max(1, size[0] // 4), max(1, size[1] // 4))
    overlay = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    side = min(small)
    for _ in range(rng.randint(5, 12)):
        cx, cy = rng.uniform(0, small[0]), rng.uniform(0, small[1])
        rx, ry = rng.uniform(0.1, 0.45) * side, rng.uniform(0.1, 0.45) * side
        colour = rng.choice(colours)
        draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=(*colour, rng.randint(90, 200)))
    overlay = overlay.filter(ImageFilter.GaussianBlur(max(1.0, side / 30)))
    overlay = overlay.resize(size, Image.Resampling.BICUBIC)
    image.paste(overlay, (0, 0), overlay)
    return image


def _paint_geometric(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    colours = _palette(rng, 5, 0.8, 0.95)
    image = Image.new("RGB", size, colours[0])
    draw = ImageDraw.Draw(image)
    columns = rng.randint(3, 9)
    cell = max(1, size[0] // columns)
    rows = -(-size[1] // cell)
    for row in range(rows):
        for col in range(columns + 1):
            x0, y0 = col * cell, row * cell
            x1, y1 = x0 + cell, y0 + cell
            colour = rng.choice(colours)
            shape = rng.randrange(4)
            if shape == 0:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            elif shape == 1:
                draw.polygon([(x0, y0), (x1, y0), (x0, y1)], fill=colour)
            elif shape == 2:
                draw.polygon([(x1, y0), (x1, y1), (x0, y1)], fill=colour)
            else:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
    return image


def _paint_mono(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    dark, light = rng.randint(0, 70), rng.randint(180, 255)
    mid = (dark + light) // 2
    image = _linear_gradient(rng, size, [(dark,) * 3, (light,) * 3, (mid,) * 3])
    draw = ImageDraw.Draw(image)
    width, height = size
    stroke = max(1, min(size) // 100)
    for _ in range(rng.randint(8, 24)):
        grey = rng.randint(0, 255)
        points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(2)]
        draw.line(points, fill=(grey, grey, grey), width=stroke)
    return image


_PAINTERS: Final[dict[Style, Callable[[random.Random, tuple[int, int]], Image.Image]]] = {
    "abstract": _paint_abstract,
    "gradient": _paint_gradient,
    "geometric": _paint_geometric,
    "mono": _paint_mono,
}


# -- the prompt, printed ---------------------------------------------------------------


def _print_prompt(image: Image.Image, prompt: str) -> None:
    """Print `prompt` on a translucent band at the bottom, wrapped, at most 3 lines."""
    width, height = image.size
    font_size = max(8, min(width, height) // 16)
    margin = max(2, font_size // 2)
    if height < font_size * 2 or width < font_size * 3:
        return  # too small for legible text
    font = ImageFont.load_default(size=font_size)
    lines = wrap_text(prompt, font, width - 2 * margin, max_lines=3)
    if not lines:
        return
    line_height = font_size + font_size // 4
    band_top = height - len(lines) * line_height - 2 * margin
    band = Image.new("RGBA", (width, height - band_top), (0, 0, 0, 140))
    image.paste(band, (0, band_top), band)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((margin, band_top + margin + i * line_height), line, font=font, fill="white")


def wrap_text(
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    max_width: float,
    *,
    max_lines: int,
) -> list[str]:
    """Greedy word wrap to `max_width` pixels; an overflowing last line ends in '...'."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= max_width or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " ..."
    return [_fit(line, font, max_width) for line in lines]


def _fit(line: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float) -> str:
    if font.getlength(line) <= max_width:
        return line
    while line and font.getlength(line + "...") > max_width:
        line = line[:-1]
    return line + "..." if line else ""
