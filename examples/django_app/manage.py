#!/usr/bin/env python
"""Django's command line for the example project (`webapp`, with one app, `signups`).

From `examples/django_app/`, a worker in one terminal (it imports the job types from
`examples/_webapp_jobs.py`), the site in another:

    PYTHONPATH=.. brains-jobs worker --db sqlite+aiosqlite:///webapp.db --plugin _webapp_jobs
    python manage.py runserver

then open http://127.0.0.1:8000/signups/, or enqueue from the command line:

    python manage.py send_welcome Ada ada@example.com --wait 10

The site keeps its jobs in `webapp.db` beside this file unless `BRAINS_JOBS_DATABASE_URL`
says otherwise.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
