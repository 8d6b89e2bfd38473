"""The job through a real runtime (temporary SQLite file, real artifact directory)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from importlib.metadata import entry_points

import brains_jobs as bj
import pytest
from brains_jobs import testing
from PIL import Image

from brains_jobs_image_generation import plugin
from brains_jobs_image_generation.models import ImageRequest, ImageResult
from brains_jobs_image_generation.render import ImageSpec, render_local

pytestmark = pytest.mark.anyio


async def test_local_image_is_stored_as_an_artifact(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("BRAINS_JOBS_IMAGES_BACKEND", raising=False)
    req = ImageRequest(prompt="A red fox in snow", width=96, height=64, seed=3, format="webp")
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        assert rt.registry.get("image-generation") is plugin.generate_image
        job = await testing.run_until_final(rt, plugin.generate_image, req)
        assert job.status is bj.JobStatus.SUCCEEDED
        result = plugin.generate_image.parse_output(job.output)
        data = await rt.artifacts.get(result.artifact)
        events = await rt.store.events_after(0, job_id=job.id)

    assert isinstance(result, ImageResult)
    assert "b64" not in str(job.output) and len(str(job.output)) < 1000  # no bytes in output
    assert (result.format, result.width, result.height, result.backend) == ("webp", 96, 64, "local")
    assert result.bytes == result.artifact.size == len(data)
    assert result.sha256 == result.artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert result.artifact.content_type == "image/webp"
    assert result.artifact.name == "a-red-fox-in-snow-3.webp"
    # Deterministic: the runtime's artifact holds exactly what the renderer draws.
    assert data == render_local(ImageSpec("A red fox in snow", 96, 64, 3, "webp")).data
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("WEBP", (96, 64))
    progress = [e.progress for e in events if e.kind is bj.EventKind.PROGRESS]
    assert progress == [0.1, 0.8, 0.95]


async def test_openai_backend_through_the_runtime(tmp_path, images_env) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        job = await testing.run_until_final(
            rt,
            plugin.generate_image,
            {"prompt": "a cat", "width": 64, "height": 64, "backend": "openai"},
        )
        result = plugin.generate_image.parse_output(job.output)
        data = await rt.artifacts.get(result.artifact)
    assert result.backend == "openai"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and result.bytes == len(data)
    assert images_env.hits("a cat") == 1


async def test_backend_from_environment(tmp_path, images_env, monkeypatch) -> None:
    monkeypatch.setenv("BRAINS_JOBS_IMAGES_BACKEND", "openai")
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        job = await testing.run_until_final(
            rt, plugin.generate_image, {"prompt": "env cat", "width": 32, "height": 32}
        )
        assert plugin.generate_image.parse_output(job.output).backend == "openai"
        monkeypatch.setenv("BRAINS_JOBS_IMAGES_BACKEND", "dall-e-on-a-toaster")
        job = await testing.run_until_final(
            rt, plugin.generate_image, {"prompt": "env cat", "width": 32, "height": 32}
        )
    assert images_env.hits("env cat") == 1
    assert job.status is bj.JobStatus.FAILED and job.attempts == 1
    assert (
        "BRAINS_JOBS_IMAGES_BACKEND='dall-e-on-a-toaster' names no backend" in job.errors[0].message
    )


async def test_400_is_permanent_and_not_retried(tmp_path, images_env) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        job = await testing.run_until_final(
            rt,
            plugin.generate_image,
            {"prompt": "fail-400", "backend": "openai", "width": 32, "height": 32},
        )
    assert job.status is bj.JobStatus.FAILED
    assert job.attempts == 1 and job.max_attempts == 3
    [error] = job.errors
    assert error.type == "PermanentError"
    assert "400 Bad Request" in error.message and "safety system" in error.message
    assert images_env.hits("fail-400") == 1


async def test_500_is_retried(tmp_path, images_env) -> None:
    fast = dataclasses.replace(
        plugin.generate_image, retry=bj.RetryPolicy(base=0.01, cap=0.01), max_attempts=2
    )
    async with testing.runtime(tmp_path, jobs=[fast]) as rt:
        job = await testing.run_until_final(
            rt, fast, {"prompt": "fail-500", "backend": "openai", "width": 32, "height": 32}
        )
    assert job.status is bj.JobStatus.FAILED
    assert job.attempts == 2
    assert [e.type for e in job.errors] == ["RetryableImageError"] * 2
    assert images_env.hits("fail-500") == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"prompt": "x", "width": 4096}, "width"),
        ({"prompt": "x", "height": 8}, "height"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x", "format": "gif"}, "format"),
        ({"prompt": "x", "style": "photoreal"}, "style"),
        ({"prompt": "x", "backend": "midjourney"}, "backend"),
        ({"prompt": "x", "seed": -1}, "seed"),
    ],
)
async def test_invalid_input_is_refused_at_enqueue(tmp_path, data, field) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        with pytest.raises(bj.InvalidJobInput) as info:
            await rt.enqueue("image-generation", data)
    assert info.value.fields == [field]


def test_artifact_name() -> None:
    assert plugin.artifact_name("Hello, World!", 1, "jpeg") == "hello-world-1.jpg"
    assert plugin.artifact_name("!!!", 0, "png") == "image-0.png"
    assert len(plugin.artifact_name("word " * 100, 0, "png")) <= 48 + len("-0.png")


async def test_entry_point_registers_the_job(tmp_path, monkeypatch) -> None:
    [entry_point] = [
        ep for ep in entry_points(group="brains_jobs") if ep.name == "image-generation"
    ]
    assert entry_point.value == "brains_jobs_image_generation.plugin"
    assert entry_point.load() is plugin
    # Through the real entry-point path, but only this plugin's entry point: the test
    # must not depend on whatever else is installed.
    monkeypatch.setenv("BRAINS_JOBS_PLUGINS_ALLOW", "image-generation")
    async with testing.runtime(tmp_path, load_entrypoints=True) as rt:
        assert rt.registry.get("image-generation") is plugin.generate_image
