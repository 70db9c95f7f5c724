"""Show how many SQL queries and milliseconds a page took, when DEBUG is on."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from django.conf import settings

from maintenance_perf.monitoring import count_queries

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpRequest, HttpResponse

#: Templates put this marker where the figures should appear.
MARKER = b"<!-- query-stats -->"


class QueryStatsMiddleware:
    """Replace :data:`MARKER` in an HTML page with its query count and time."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.DEBUG:
            return self.get_response(request)

        started = time.perf_counter()
        with count_queries() as counted:
            response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000

        if response.get("Content-Type", "").startswith("text/html") and not getattr(
            response, "streaming", False
        ):
            stats = f"{counted.count} SQL queries, {elapsed_ms:.0f} ms".encode()
            response.content = response.content.replace(MARKER, stats)
        return response
