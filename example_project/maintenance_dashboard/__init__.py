from __future__ import annotations

# Loaded with Django, so @shared_task functions bind to this app.
from .celery import app as celery_app

__all__ = ["celery_app"]
