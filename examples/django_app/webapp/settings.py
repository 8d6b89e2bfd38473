"""Settings of the example project: no Django models, one brains-jobs database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# The job types are shared with the Flask example, in examples/_webapp_jobs.py; a real
# project keeps them in one of its own packages.
if str(BASE_DIR.parent) not in sys.path:
    sys.path.append(str(BASE_DIR.parent))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-do-not-deploy")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = ["signups"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}  # no models: the jobs live in their own database
USE_TZ = True

# Where `signups.background.client` keeps its jobs (SQLite here, PostgreSQL in production:
# `postgresql+asyncpg://user@host/db`).
BRAINS_JOBS_DATABASE_URL = os.environ.get(
    "BRAINS_JOBS_DATABASE_URL", f"sqlite+aiosqlite:///{BASE_DIR / 'webapp.db'}"
)
