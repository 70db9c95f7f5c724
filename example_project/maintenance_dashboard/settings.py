"""Settings of the example maintenance site.

The defaults need no server: SQLite and the local-memory cache. Environment
variables switch to the production services:

``DATABASE_URL``
    ``postgres://USER[:PASSWORD]@HOST[:PORT]/NAME`` uses PostgreSQL;
    ``sqlite:///PATH`` another SQLite file.
``DATABASE_REPLICA_URL``
    A read replica of ``DATABASE_URL``, in the same form; the dashboard's
    reads go there (``MAINTENANCE_PERF["READ_REPLICA"]``).
``REDIS_URL``
    ``redis://HOST:PORT/DB`` caches through django-redis.
``DJANGO_DEBUG``
    ``0`` (or ``false``, ``no``, ``off``) turns DEBUG off; it is on by
    default in this demo.
``TIME_ZONE``
    The site's time zone (default ``UTC``).
``CELERY_BROKER_URL``
    The Celery broker of the maintenance jobs (default
    ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "example-only-not-secret-change-me-in-production"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() not in {"0", "false", "no", "off"}
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "maintenance_perf",
    "core",
    "equipment",
    "maintenance",
    "events",
    "dashboard",
]
if importlib.util.find_spec("django_celery_beat"):
    # Lets beat run with --scheduler django_celery_beat.schedulers:DatabaseScheduler
    # once manage.py maintenance_perf_sync_beat has written the schedule.
    INSTALLED_APPS.append("django_celery_beat")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dashboard.middleware.QueryStatsMiddleware",
]

ROOT_URLCONF = "maintenance_dashboard.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # A host's own templates here override the apps' templates.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "maintenance_dashboard.wsgi.application"


def database_from_url(url: str) -> dict[str, Any]:
    """Turn ``DATABASE_URL`` into a ``DATABASES`` entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parts.path[1:]) or BASE_DIR / "db.sqlite3",
        }
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path[1:]),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ValueError(
        f"DATABASE_URL scheme {parts.scheme!r} is not supported; "
        "use postgres://USER@HOST:PORT/NAME or sqlite:///PATH"
    )


DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
}

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

MAINTENANCE_PERF: dict[str, Any] = {
    "CACHE_ALIAS": "default",
    "DASHBOARD_TIMEOUT": 300,
}

if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = database_from_url(os.environ["DATABASE_REPLICA_URL"])
    MAINTENANCE_PERF["READ_REPLICA"] = "replica"
    DATABASE_ROUTERS = ["maintenance_perf.routers.DashboardReplicaRouter"]
    MIDDLEWARE.insert(0, "maintenance_perf.routers.ReadReplicaMiddleware")


AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
# Crontab schedules run in the site's time zone, like the tasks' own dates.
CELERY_TIMEZONE = TIME_ZONE
# The tasks log what they did; nobody reads their return values from a store.
CELERY_TASK_IGNORE_RESULT = True
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"maintenance_perf": {"handlers": ["console"], "level": "INFO"}},
}
