"""The job through a real runtime: images read back from the artifact store, PDF checked."""

from __future__ import annotations

import hashlib
import io
from importlib.metadata import entry_points

import brains_jobs as bj
import pytest
from brains_jobs import testing
from pypdf import PdfReader

from brains_jobs_pdf_export import plugin
from brains_jobs_pdf_export.models import PdfRequest, PdfResult, Section

pytestmark = pytest.mark.anyio

LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 12


async def test_export_with_images_spans_pages(tmp_path, make_image) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        assert rt.registry.get("pdf-export") is plugin.export_pdf
        # Artifacts a host app (or an earlier job) stored; job id 0 stands for "no job".
        png = await rt.artifacts.put(
            0, make_image("PNG", 120, 80), name="a.png", content_type="image/png"
        )
        jpeg = await rt.artifacts.put(
            0, make_image("JPEG", 60, 60), name="b.jpg", content_type="image/jpeg"
        )
        sections = [
            Section(
                heading="Summary",
                body="The **key** finding, in *brief*.\n\n- one\n- two",
                images=[png],
            ),
            *[
                Section(heading=f"Chapter {i}", body=f"## Part {i}\n\n{LOREM}\n\n{LOREM}")
                for i in range(1, 9)
            ],
            Section(heading="Appendix", body="`code sample`", images=[jpeg, png]),
        ]
        req = PdfRequest(title="Annual Report", sections=sections, page_size="letter")
        job = await testing.run_until_final(rt, plugin.export_pdf, req)
        assert job.status is bj.JobStatus.SUCCEEDED, job.errors
        result = plugin.export_pdf.parse_output(job.output)
        data = await rt.artifacts.get(result.artifact)
        events = await rt.store.events_after(0, job_id=job.id)

    assert isinstance(result, PdfResult)
    assert result.artifact.name == "annual-report.pdf"
    assert result.artifact.content_type == "application/pdf"
    assert result.bytes == len(data) == result.artifact.size
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == result.pages >= 3
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "Annual Report",
        "Summary",
        "key finding",
        "Chapter 8",
        "Part 8",
        "Appendix",
        "code sample",
    ):
        assert expected in text
    assert sum(len(page.images) for page in reader.pages) == 3
    assert float(reader.pages[0].mediabox.width) == pytest.approx(612)
    progress = [e.progress for e in events if e.kind is bj.EventKind.PROGRESS]
    assert progress == [0.1, 0.4, 0.9]


async def test_missing_image_is_permanent(tmp_path) -> None:
    ghost = bj.ArtifactRef(
        key="0/ghost.png", name="ghost.png", content_type="image/png", size=1, sha256="0" * 64
    )
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        job = await testing.run_until_final(
            rt,
            plugin.export_pdf,
            {"title": "T", "sections": [{"heading": "H", "images": [ghost.model_dump()]}]},
        )
    assert job.status is bj.JobStatus.FAILED
    assert job.attempts == 1 and job.max_attempts == 3
    assert job.errors[0].type == "PermanentError"
    assert job.errors[0].message == "image artifact '0/ghost.png' (ghost.png) does not exist"


async def test_corrupted_and_undecodable_images_are_permanent(tmp_path) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        junk = await rt.artifacts.put(
            0, b"not an image at all", name="junk.png", content_type="image/png"
        )
        lying = junk.model_copy(update={"sha256": "f" * 64})
        jobs = [
            await testing.run_until_final(
                rt,
                plugin.export_pdf,
                PdfRequest(title="T", sections=[Section(heading="H", images=[ref])]),
            )
            for ref in (lying, junk)
        ]
    assert [j.status for j in jobs] == [bj.JobStatus.FAILED] * 2
    assert [j.attempts for j in jobs] == [1, 1]
    assert "does not match its sha256" in jobs[0].errors[0].message
    assert "not a readable image" in jobs[1].errors[0].message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "T", "sections": []}, "sections"),
        ({"title": "", "sections": [{"heading": "H"}]}, "title"),
        ({"title": "T", "sections": [{"heading": "H"}], "page_size": "A3"}, "page_size"),
        ({"title": "T", "sections": [{"heading": "H", "images": [{"key": "k"}]}]}, "sections"),
    ],
)
async def test_invalid_input_is_refused_at_enqueue(tmp_path, data, field) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        with pytest.raises(bj.InvalidJobInput) as info:
            await rt.enqueue("pdf-export", data)
    assert {f.split(".")[0] for f in info.value.fields} == {field}


def test_pdf_name() -> None:
    assert plugin.pdf_name("Q3 Report: Sales & Costs") == "q3-report-sales-costs.pdf"
    assert plugin.pdf_name("???") == "document.pdf"


async def test_entry_point_registers_the_job(tmp_path, monkeypatch) -> None:
    [entry_point] = [ep for ep in entry_points(group="brains_jobs") if ep.name == "pdf-export"]
    assert entry_point.value == "brains_jobs_pdf_export.plugin"
    assert entry_point.load() is plugin
    # Through the real entry-point path, but only this plugin's entry point: the test
    # must not depend on whatever else is installed.
    monkeypatch.setenv("BRAINS_JOBS_PLUGINS_ALLOW", "pdf-export")
    async with testing.runtime(tmp_path, load_entrypoints=True) as rt:
        assert rt.registry.get("pdf-export") is plugin.export_pdf
