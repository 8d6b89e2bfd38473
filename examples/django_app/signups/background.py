"""The project's one jobs client.

Made when this module is imported, opened by the first call that uses it: a pre-forking
server (gunicorn `--preload`, uWSGI without `lazy-apps`) may import it before forking,
since nothing runs until a request in a worker process uses it. The client is closed
when the process exits.
"""

from __future__ import annotations

from _webapp_jobs import JOBS
from django.conf import settings

import brains_jobs as bj

client = bj.SyncClient(settings.BRAINS_JOBS_DATABASE_URL, jobs=JOBS, load_entrypoints=False)
