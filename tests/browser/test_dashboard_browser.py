"""The dashboard as people use it, in Chromium: sign in, enqueue a job from the form and
watch its progress move over server-sent events to 100 %, retry a failed job from its
page, use the keyboard, and read it all on a phone. Screenshots of each step are saved
(see `shots` in conftest.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.browser.conftest import Stack
from tests.web.conftest import TOKENS

PHONE = {"width": 390, "height": 844}


def sign_in(page: Any, stack: Stack, who: str = "admin") -> None:
    page.goto(f"{stack.base_url}/dashboard/")
    assert "/dashboard/login" in page.url
    page.fill("input[name=user]", TOKENS[who][1])
    page.fill("input[name=token]", TOKENS[who][0])
    page.click("#login button[type=submit]")
    page.wait_for_url(f"{stack.base_url}/dashboard/")


def wait_status(stack: Stack, job_id: int, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    with stack.api() as api:
        while api.get(f"/api/jobs/{job_id}").json()["status"] != status:
            assert time.monotonic() < deadline, f"job {job_id} never became {status}"
            time.sleep(0.1)


def test_the_dashboard_in_a_browser(chromium: Any, stack: Stack, shots: Path) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, stack)
    assert page.locator("h1").inner_text() == "Overview"
    with stack.api() as api:
        failing = api.post("/api/jobs", json={"type": "permanent", "input": {"text": "x"}}).json()
        for i in range(3):
            api.post("/api/jobs", json={"type": "add", "input": {"a": i, "b": 1}, "tags": ["demo"]})
    wait_status(stack, failing["id"], "failed")

    # Keyboard: "g j" goes to the jobs, "/" focuses the filter, "?" lists the shortcuts.
    page.reload()
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    page.keyboard.press("g")
    page.keyboard.press("j")
    page.wait_for_url(f"{stack.base_url}/dashboard/jobs")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "filter-type"
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("?")
    assert page.locator("#shortcuts").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#shortcuts").is_visible()
    page.screenshot(path=str(shots / "jobs.png"), full_page=True)

    # Enqueue from the form; the progress bar moves live, then the page shows the output.
    page.keyboard.press("n")
    page.select_option("#enqueue-type", "steps")
    page.fill("#enqueue-input", '{"steps": 5, "seconds": 2.5}')
    page.click("#enqueue button[type=submit]")
    page.wait_for_url("**/dashboard/jobs/*?notice=enqueued")
    assert page.locator(".notice").inner_text() == "Job enqueued."
    page.wait_for_function(
        "() => { const v = document.getElementById('progress').value; return v > 0 && v < 100; }",
        timeout=15_000,
    )
    assert page.locator("#timeline tr.fresh").count() >= 1  # rows that came over SSE
    page.screenshot(path=str(shots / "job-progress.png"), full_page=True)
    page.wait_for_function("() => document.querySelector('#job-output') !== null", timeout=15_000)
    assert page.locator("#progress-text").inner_text() == "100 %"
    assert page.locator("#job-status .status").inner_text() == "succeeded"
    assert '"steps": 5' in page.locator("#job-output").inner_text()
    assert page.locator("#timeline").inner_text().count("step 3 of 5 done") == 1
    page.screenshot(path=str(shots / "job-finished.png"), full_page=True)

    # A failed job: its error and traceback, then a retry from its page, confirmed.
    page.goto(f"{stack.base_url}/dashboard/jobs/{failing['id']}")
    assert "PermanentError" in page.locator(".attempt").first.inner_text()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#action-retry")
    assert page.locator("#job-status .status").inner_text() == "failed"  # not confirmed
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.keyboard.press("r")  # the shortcut presses the same button
    page.wait_for_url("**notice=retried")
    assert dialogs == [f"Retry job #{failing['id']}?"]
    assert page.locator(".notice").inner_text() == "Queued again."
    wait_status(stack, failing["id"], "failed")
    page.wait_for_selector("#job[data-final=true]", timeout=15_000)  # reloaded when it ended
    assert page.locator("#job-status .status").inner_text() == "failed"
    assert page.locator(".attempt").count() == 2
    page.screenshot(path=str(shots / "job-failed.png"), full_page=True)
    with stack.api() as api:
        assert api.get(f"/api/jobs/{failing['id']}").json()["attempts"] == 2  # ran again
        events = api.get(f"/api/jobs/{failing['id']}/events").json()["events"]
        assert any(e["actor"] == "zed" and e["status"] == "queued" for e in events)

    # An image artifact previews on the job's page.
    with stack.api() as api:
        rendered = api.post(
            "/api/jobs", json={"type": "render", "input": {"title": "chart"}}
        ).json()
    wait_status(stack, rendered["id"], "succeeded")
    page.goto(f"{stack.base_url}/dashboard/jobs/{rendered['id']}")
    assert page.evaluate("document.querySelector('img.preview').naturalWidth") == 96

    # On a phone.
    phone = chromium.new_context(viewport=PHONE, storage_state=context.storage_state())
    small = phone.new_page()
    small.goto(f"{stack.base_url}/dashboard/")
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    small.screenshot(path=str(shots / "phone-overview.png"), full_page=True)
    small.goto(f"{stack.base_url}/dashboard/jobs/{failing['id']}")
    small.screenshot(path=str(shots / "phone-job.png"), full_page=True)
    phone.close()
    context.close()
    assert not errors, errors  # no script error, no CSP violation
