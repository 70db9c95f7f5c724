"""The example site's Celery app.

Run the maintenance jobs with a worker that also runs beat::

    celery -A maintenance_dashboard worker -B --loglevel INFO

or with the two apart, as production does: ``celery -A maintenance_dashboard
worker`` and ``celery -A maintenance_dashboard beat``. The broker is
``CELERY_BROKER_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from maintenance_perf.schedule import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")

app = Celery("maintenance_dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def set_beat_schedule(sender: Celery, **kwargs: Any) -> None:
    # Read once Celery loads its configuration, not when this module is
    # imported: a settings module that imports this project's settings (the
    # tests' does) would otherwise be read before it is complete.
    sender.conf.beat_schedule = beat_schedule()
