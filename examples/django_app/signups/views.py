"""Plain `def` views calling the jobs client: it blocks this request's thread only."""

from __future__ import annotations

import contextlib

from _webapp_jobs import status_of, welcome_email
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_http_methods

import brains_jobs as bj
from signups.background import client

FORM = """<!doctype html>
<title>Sign up</title>
<form method="post">
  <input type="hidden" name="csrfmiddlewaretoken" value="{token}">
  <input name="name" placeholder="name"> <input name="email" placeholder="email">
  <button>Sign up</button>
</form>
"""


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: enqueue the welcome email, then show its job's status."""
    if request.method == "GET":
        return HttpResponse(FORM.format(token=escape(get_token(request))))
    try:
        handle = client.enqueue(
            welcome_email,
            {"name": request.POST.get("name", ""), "email": request.POST.get("email", "")},
            tags=["signup"],
        )
    except bj.InvalidJobInput as exc:
        return JsonResponse({"error": str(exc), "fields": exc.fields}, status=422)
    return redirect("signup-status", job_id=handle.id)


@require_GET
def signup_status(request: HttpRequest, job_id: int) -> JsonResponse:
    """The job's status, with its result once it succeeded; `?wait=N` waits up to N
    seconds (at most 10) for it to finish.
    """
    try:
        job = client.get(job_id)
    except bj.JobNotFound:
        raise Http404(f"no job {job_id}") from None
    if job.type != welcome_email.name:
        raise Http404(f"job {job_id} is not a signup")
    try:
        wait = min(float(request.GET.get("wait", 0)), 10.0)
    except ValueError:
        wait = 0.0
    if wait > 0 and not job.status.is_final:
        # Holds this request's thread for at most `wait` seconds; the job goes on.
        with contextlib.suppress(TimeoutError, bj.JobError):
            client.result(job_id, timeout=wait, definition=welcome_email)
        job = client.get(job_id)
    return JsonResponse(status_of(job))
