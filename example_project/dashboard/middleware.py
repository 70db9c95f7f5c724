"""Show how many SQL queries and milliseconds a page took, when DEBUG is on."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections

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

        counter = QueryCounter()
        started = time.perf_counter()
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(counter))
            response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000

        if response.get("Content-Type", "").startswith("text/html") and not getattr(
            response, "streaming", False
        ):
            stats = f"{counter.count} SQL queries, {elapsed_ms:.0f} ms".encode()
            response.content = response.content.replace(MARKER, stats)
        return response


class QueryCounter:
    """An ``execute_wrapper`` that counts the statements it sees."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: Any,
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)
