"""The example site's Celery app.

Run the maintenance jobs with a worker that also runs beat::

    celery -A maintenance_dashboard worker -B --loglevel INFO

or with the two apart, as production does: ``celery -A maintenance_dashboard
worker`` and ``celery -A maintenance_dashboard beat``. The broker is
``CELERY_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import os

from celery import Celery

from maintenance_perf.schedule import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")

app = Celery("maintenance_dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = beat_schedule()
app.autodiscover_tasks()
