"""The job types through a real runtime on a temporary SQLite file."""

from __future__ import annotations

import hashlib
import io

import anyio
import brains_jobs as bj
import pytest
from brains_jobs import testing

from brains_jobs_demo import jobs, plugin
from brains_jobs_demo.site import SITE_PARAGRAPHS, SITE_TITLE, fixture_site

pytestmark = pytest.mark.anyio

STEPS = ("demo.report.scrape", "demo.report.cover", "demo.report.pdf")


async def progress_of(rt: bj.Runtime, job_id: int) -> list[tuple[float | None, str | None]]:
    events = await rt.store.events_after(0, job_id=job_id)
    return [(e.progress, e.message) for e in events if e.kind is bj.EventKind.PROGRESS]


async def test_checksum_hashes_the_seed_bytes_chunk_by_chunk(tmp_path) -> None:
    block = hashlib.sha256(b"s").digest() * 2048
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        job = await testing.run_until_final(
            rt, jobs.checksum, {"seed": "s", "size": 3 * len(block), "chunks": 3}
        )
        progress = await progress_of(rt, job.id)
        uneven = await testing.run_job(rt, jobs.checksum, {"seed": "s", "size": 100, "chunks": 3})
    out = jobs.checksum.parse_output(job.output)
    assert out == jobs.Checksum(sha256=hashlib.sha256(block * 3).hexdigest(), size=3 * len(block))
    assert uneven.sha256 == hashlib.sha256(block[:33] + block[:33] + block[:34]).hexdigest()
    assert progress == [(1 / 3, "chunk 1/3"), (2 / 3, "chunk 2/3"), (1.0, "chunk 3/3")]


async def test_wordcount_counts_by_paragraph_and_retries_on_purpose(tmp_path) -> None:
    text = "The cat sat.\n\nThe cat ran; the dog's bowl.\n"
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        out = await testing.run_job(rt, jobs.wordcount, {"text": text, "top": 2})
        retried = await testing.run_until_final(
            rt, jobs.wordcount, {"text": jobs.TEXT, "fail_first": True}
        )
        progress = await progress_of(rt, retried.id)
    assert out == jobs.WordCount(words=9, top=[("the", 3), ("cat", 2)])
    assert retried.status is bj.JobStatus.SUCCEEDED and retried.attempts == 2
    assert [(e.attempt, e.type, e.message) for e in retried.errors] == [
        (1, "ConnectionError", "simulated network hiccup")
    ]
    assert jobs.wordcount.parse_output(retried.output).words == 54
    assert [p for p, _ in progress] == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize(
    ("job", "data"),
    [
        (jobs.checksum, {"seed": "s", "size": 0}),
        (jobs.checksum, {"seed": "s", "chunks": 0}),
        (jobs.wordcount, {"text": ""}),
        (jobs.report_scrape, {"url": "http://x", "seed": -1}),
    ],
)
async def test_invalid_input_is_refused_at_enqueue(tmp_path, job, data) -> None:
    async with testing.runtime(tmp_path, plugins=[plugin]) as rt:
        with pytest.raises(bj.InvalidJobInput):
            await rt.enqueue(job, data)


def installed_job_types():
    """The job types of the installed plugins, as a runtime with these settings sees them."""
    return bj.Runtime().registry


async def test_report_workflow_chains_three_steps_into_a_pdf(tmp_path) -> None:
    pypdf = pytest.importorskip("pypdf")
    registry = installed_job_types()
    if jobs.missing_report_plugins(registry):
        pytest.skip(f"needs {' '.join(jobs.missing_report_plugins(registry))}")
    async with (
        testing.runtime(tmp_path, plugins=[plugin], load_entrypoints=True) as rt,
        fixture_site() as site,
    ):
        first = await rt.enqueue(jobs.report_scrape, {"url": f"{site}/article"})
        with anyio.fail_after(30):
            await rt.run_worker(2, burst=True)
        listed = {j.type: j for j in (await rt.list(limit=100)).jobs}
        assert set(listed) == set(STEPS)
        scrape, cover, report = (listed[step] for step in STEPS)
        assert [j.status for j in (scrape, cover, report)] == [bj.JobStatus.SUCCEEDED] * 3
        assert [j.attempts for j in (scrape, cover, report)] == [1, 1, 1]
        assert scrape.id == first.id and scrape.parent_id is None
        scraped = jobs.report_scrape.parse_output(scrape.output)
        covered = jobs.report_cover.parse_output(cover.output)
        result = jobs.report_pdf.parse_output(report.output)
        assert cover.parent_id == scrape.id
        assert scraped.next_job_id == cover.id and covered.next_job_id == report.id
        assert report.parent_id == cover.id
        page_text = (await rt.artifacts.get(scraped.text)).decode()
        image = await rt.artifacts.get(covered.image)
        pdf = await rt.artifacts.get(result.pdf)
        # The plugins' progress belongs to the steps that ran them in place.
        scrape_progress = await progress_of(rt, scrape.id)

    assert scraped.title == SITE_TITLE and scraped.characters == len(page_text)
    assert all(p in page_text for p in SITE_PARAGRAPHS)
    assert image.startswith(b"\x89PNG") and covered.image.content_type == "image/png"
    assert hashlib.sha256(pdf).hexdigest() == result.pdf.sha256
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == result.pages >= 1
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert SITE_TITLE in text and all(p in text for p in SITE_PARAGRAPHS)
    assert sum(len(page.images) for page in reader.pages) == 1
    assert [p for p, _ in scrape_progress] == [0.2, 0.6, 0.9, 1.0]
    assert scrape_progress[-1][1] == f"scraped {SITE_TITLE!r}; cover is job #{cover.id}"


async def test_a_failed_step_enqueues_nothing(tmp_path) -> None:
    if "web-scraping" not in installed_job_types():
        pytest.skip("needs brains-jobs-web-scraping")
    async with (
        testing.runtime(tmp_path, plugins=[plugin], load_entrypoints=True) as rt,
        fixture_site() as site,
    ):
        job = await testing.run_until_final(rt, jobs.report_scrape, {"url": f"{site}/gone"})
        listed = (await rt.list(limit=100)).jobs
    assert job.status is bj.JobStatus.FAILED and job.attempts == 1
    assert job.errors[0].type == "PermanentError" and "404" in job.errors[0].message
    assert [j.id for j in listed] == [job.id]


async def test_steps_without_the_plugins_name_what_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BRAINS_JOBS_PLUGINS_DENY", "web-scraping,pdf-export")
    assert jobs.missing_report_plugins(installed_job_types()) == [
        "brains-jobs-web-scraping",
        "brains-jobs-pdf-export",
    ]
    async with testing.runtime(tmp_path, plugins=[plugin], load_entrypoints=True) as rt:
        job = await testing.run_until_final(rt, jobs.report_scrape, {"url": "http://127.0.0.1/"})
        ref = await rt.artifacts.put(0, b"text", name="page.txt", content_type="text/plain")
        image = ref.model_copy(update={"name": "cover.png"})
        pdf_job = await testing.run_until_final(
            rt,
            jobs.report_pdf,
            jobs.ReportPdfRequest(url="http://x/", title="T", text=ref, image=image),
        )
    assert job.status is bj.JobStatus.FAILED and job.attempts == 1
    assert job.errors[0].type == "PermanentError"
    assert job.errors[0].message == (
        "job type 'web-scraping' is not installed: pip install brains-jobs-web-scraping"
    )
    assert pdf_job.status is bj.JobStatus.FAILED and pdf_job.attempts == 1
    assert pdf_job.errors[0].message.endswith("pip install brains-jobs-pdf-export")
