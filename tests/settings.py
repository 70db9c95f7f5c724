"""The example project's settings, with a ``replica`` alias for the router tests.

The alias is a test mirror of ``default``: Django creates no database for it,
and its connection reads the test database, so a test can see which alias
ran which query. Nothing routes to it unless a test enables the router.
"""

from __future__ import annotations

from maintenance_dashboard.settings import *  # noqa: F403
from maintenance_dashboard.settings import DATABASES

DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
