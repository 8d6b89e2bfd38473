"""`python manage.py send_welcome NAME EMAIL [--wait SECONDS]`: enqueue a welcome email
from the command line, optionally waiting for a worker to send it.
"""

from __future__ import annotations

from typing import Any

from _webapp_jobs import welcome_email
from django.core.management.base import BaseCommand, CommandError, CommandParser

import brains_jobs as bj
from signups.background import client


class Command(BaseCommand):
    help = "Enqueue a welcome email; with --wait, wait for a worker to send it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("email")
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            handle = client.enqueue(
                welcome_email, {"name": options["name"], "email": options["email"]}
            )
        except bj.InvalidJobInput as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"queued job #{handle.id}")
        if options["wait"] > 0:
            try:
                email = client.result(handle, timeout=options["wait"])
            except TimeoutError:
                raise CommandError(f"job #{handle.id} is not done yet") from None
            except bj.JobError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"sent to {email.to}: {email.subject}")
