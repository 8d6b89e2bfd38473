"""A host application that chains three plugin job types into one workflow:
scrape a page -> draw a cover image -> export a PDF report with the page's text and the image.

    python examples/workflow.py [DIRECTORY]

Needs the web-scraping, image-generation and pdf-export plugins installed (`python3 dev.py`
installs them). The jobs database and the artifacts go to DIRECTORY (default: a new
temporary directory, kept so that you can open the PDF). The page comes from a small site
served on 127.0.0.1 for the run. Prints every job's progress, then the PDF's path and
page count.

Each step is a job type of the host's own. It runs the plugin's handler in place, so the
plugin's progress, logs and artifacts belong to the step, then enqueues the next step with
`ctx.enqueue`, which records the step as the next one's parent.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio
from brains_jobs_demo.site import fixture_site
from brains_jobs_image_generation.models import ImageRequest
from brains_jobs_image_generation.plugin import generate_image
from brains_jobs_pdf_export.models import PdfRequest, PdfResult, Section
from brains_jobs_pdf_export.plugin import export_pdf
from brains_jobs_web_scraping.models import ScrapeRequest
from brains_jobs_web_scraping.plugin import scrape
from pydantic import BaseModel

import brains_jobs as bj


class Page(BaseModel):
    url: str


class Cover(BaseModel):
    title: str
    text: str
    url: str


class Report(BaseModel):
    title: str
    text: str
    url: str
    image: bj.ArtifactRef


class Next(BaseModel):
    next_job_id: int


@bj.job("workflow.scrape", max_attempts=3, backoff=0.5, timeout=60)
async def scrape_step(ctx: bj.JobContext, inp: Page) -> Next:
    """Step 1: scrape the page, then enqueue the cover."""
    page = await scrape.handler(ctx, ScrapeRequest(url=inp.url, timeout=20))
    title = page.title or inp.url
    nxt = await ctx.enqueue(cover_step, Cover(title=title, text=page.text, url=inp.url))
    return Next(next_job_id=nxt.id)


@bj.job("workflow.cover", max_attempts=3, backoff=0.5, timeout=60)
async def cover_step(ctx: bj.JobContext, inp: Cover) -> Next:
    """Step 2: draw a cover image for the title, then enqueue the PDF."""
    image = await generate_image.handler(
        ctx, ImageRequest(prompt=inp.title, width=480, height=270, backend="local")
    )
    report = Report(title=inp.title, text=inp.text, url=inp.url, image=image.artifact)
    nxt = await ctx.enqueue(pdf_step, report)
    return Next(next_job_id=nxt.id)


@bj.job("workflow.pdf", max_attempts=3, backoff=0.5, timeout=60)
async def pdf_step(ctx: bj.JobContext, inp: Report) -> PdfResult:
    """Step 3: lay out the cover and the page's text as a PDF."""
    body = "\n\n".join(line for line in inp.text.splitlines() if line.strip())
    request = PdfRequest(
        title=inp.title,
        sections=[
            Section(heading="Cover", images=[inp.image]),
            Section(heading="The page", body=body),
            Section(heading="Source", body=inp.url),
        ],
    )
    return await export_pdf.handler(ctx, request)


async def main(directory: Path) -> int:
    async with (
        bj.Runtime(
            f"sqlite+aiosqlite:///{directory / 'jobs.db'}",
            jobs=[scrape_step, cover_step, pdf_step],
            artifacts=str(directory / "artifacts"),
        ) as rt,
        fixture_site() as site,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(rt.run_worker)
        first = await rt.enqueue(scrape_step, Page(url=f"{site}/article"))

        async def show_progress() -> None:
            async with rt.events(after=0, kinds={bj.EventKind.PROGRESS}) as events:
                async for ev in events:
                    print(f"#{ev.job_id} {ev.job_type}: {ev.progress or 0:4.0%} {ev.message}")

        tg.start_soon(show_progress)
        # Follow the chain: each step's output names the job it enqueued.
        scraped = await first.result(timeout=30)
        covered = await rt.handle(scraped.next_job_id).result(timeout=30)
        result: PdfResult = await rt.handle(covered.next_job_id).result(timeout=30)
        tg.cancel_scope.cancel()  # stop the worker and the progress printer

    path = directory / "artifacts" / result.artifact.key
    print(f"PDF: {path} ({result.pages} page(s))")
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bj-"))
    target.mkdir(parents=True, exist_ok=True)
    sys.exit(anyio.run(main, target.resolve()))
