"""WSGI entry point of the example maintenance site."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")

application = get_wsgi_application()
