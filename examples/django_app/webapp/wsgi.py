"""The WSGI entry point: `gunicorn webapp.wsgi` (from `examples/django_app/`).

The jobs client is opened by the first request that uses it, in each worker process, so
`--preload` is safe.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
application = get_wsgi_application()
