"""Measure pages cold and warm, and report cache, statement and index figures."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from maintenance_perf.cache import counters
from maintenance_perf.management.tables import table_lines
from maintenance_perf.monitoring import (
    IndexSummary,
    PageMeasurement,
    Unavailable,
    allowed_host,
    hit_rate,
    index_summary,
    measure_url,
    top_statements,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from maintenance_perf.monitoring import Statement

#: How the dashboard cache counters are labelled, in text and JSON alike: they
#: are easy to mistake for the Redis server's own keyspace hits and misses.
COUNTERS_SOURCE = (
    "django-maintenance-perf's dashboard cache counters in this process, "
    "for the requests above; not Redis INFO, whose keyspace hits and misses "
    "count every client of the server"
)


#: A select list long enough to push the table names out of a shortened line.
_COLUMN_LIST = re.compile(r"^(SELECT(?: DISTINCT)?) .{40,}? (FROM) ", re.IGNORECASE)


class Command(BaseCommand):
    help = (
        "Request pages cold and warm and report their median time and query "
        "count, the repeated query shapes, the dashboard cache counters, the "
        "top statements from pg_stat_statements and index usage."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "targets",
            nargs="*",
            metavar="PATH_OR_URL_NAME",
            help="Pages to measure: a path such as /naive/ or a URL name such "
            "as dashboard:index.",
        )
        parser.add_argument(
            "--runs",
            type=int,
            default=5,
            help="Cold and warm requests per page; the median is shown "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help="The database whose statements and indexes are reported "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--top",
            type=int,
            default=10,
            help="How many statements of pg_stat_statements to show; 0 for none "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--host",
            help="The Host header of the requests (default: the first host "
            "ALLOWED_HOSTS accepts).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print JSON instead of tables."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["runs"] < 1:
            raise CommandError("--runs must be 1 or more, e.g. --runs 5.")
        if options["top"] < 0:
            raise CommandError("--top must be 0 or more; --top 0 shows none.")
        paths = [_path(target) for target in options["targets"]]
        host = options["host"] or allowed_host()
        _check_host(host)
        for alias in dict.fromkeys([DEFAULT_DB_ALIAS, options["database"]]):
            # Before any page: a refused connection would show as a 500.
            try:
                connections[alias].ensure_connection()
            except (DatabaseError, ImproperlyConfigured) as error:
                raise _unreadable(alias, error) from error

        client = Client(HTTP_HOST=host, raise_request_exception=False)
        pages = [measure_url(path, options["runs"], client) for path in paths]
        for page in pages:
            _check_status(page)
        dashboards = counters.all()
        try:
            statements = (
                top_statements(options["database"], options["top"])
                if options["top"]
                else []
            )
            indexes = index_summary(options["database"])
        except (DatabaseError, ImproperlyConfigured) as error:
            raise _unreadable(options["database"], error) from error

        if options["json"]:
            report = _json(options["runs"], pages, dashboards, statements, indexes)
            self.stdout.write(json.dumps(report, indent=2))
            return
        self._pages(options["runs"], pages)
        self._dashboards(dashboards)
        if options["top"]:
            self._statements(options["database"], statements)
        self._indexes(indexes)

    def _pages(self, runs: int, pages: Sequence[PageMeasurement]) -> None:
        if not pages:
            return
        self.stdout.write(
            f"Pages, median of {runs} requests each; a cold request follows a "
            "bump of every dashboard's cache version."
        )
        rows = [
            (
                page.path,
                str(page.status_code),
                f"{page.cold_ms:.1f}",
                f"{page.cold_queries:g}",
                f"{page.warm_ms:.1f}",
                f"{page.warm_queries:g}",
            )
            for page in pages
        ]
        header = ("path", "status", "cold ms", "cold queries", "warm ms")
        self._table((*header, "warm queries"), rows)

        for page in pages:
            repeated = [shape for shape in page.cold_shapes if shape.count > 1]
            if not repeated:
                continue
            self.stdout.write(
                f"\nRepeated query shapes of a cold {page.path} (count, total "
                "time, statement):"
            )
            for shape in repeated:
                self.stdout.write(
                    f"  {shape.count:>5} x {shape.total_ms:8.1f} ms  "
                    f"{_cut(shape.shape, 110)}"
                )

    def _dashboards(self, dashboards: dict[str, dict[str, int]]) -> None:
        self.stdout.write(f"\nDashboard cache: {COUNTERS_SOURCE}.")
        if not dashboards:
            self.stdout.write("  No cached dashboard was requested.")
            return
        rows = [
            (
                name,
                *(str(counts[kind]) for kind in counters.KINDS),
                _percent(hit_rate(counts)),
            )
            for name, counts in sorted(dashboards.items())
        ]
        self._table(("dashboard", *counters.KINDS, "hit rate"), rows)

    def _statements(
        self, database: str, statements: list[Statement] | Unavailable
    ) -> None:
        self.stdout.write(
            f"\nTop statements by total time in database {database!r}, from "
            "pg_stat_statements (since its last reset, every client):"
        )
        if isinstance(statements, Unavailable):
            self.stdout.write(f"  unavailable: {statements.reason}")
            self.stdout.write(f"  how to enable it: {statements.how_to_enable}")
            return
        rows = [
            (
                f"{statement.calls:,}",
                f"{statement.total_ms:,.1f}",
                f"{statement.mean_ms:,.2f}",
                f"{statement.rows:,}",
                _cut(statement.query, 90),
            )
            for statement in statements
        ]
        self._table(("calls", "total ms", "mean ms", "rows", "query"), rows)

    def _indexes(self, summary: IndexSummary) -> None:
        self.stdout.write(
            f"\nIndexes in database {summary.database!r} (maintenance_perf_index_"
            "report has the full table):"
        )
        if summary.statistics:  # pragma: postgresql only
            self.stdout.write(
                f"  {summary.indexes} indexes on the mapped models' tables; "
                f"{len(summary.unused)} never scanned, {len(summary.invalid)} "
                "INVALID."
            )
            for name in summary.unused:
                self.stdout.write(f"  never scanned: {name}")
            for name in summary.invalid:
                self.stdout.write(f"  INVALID: {name}")
        else:  # pragma: other databases only
            self.stdout.write(
                "  This database keeps no index usage statistics; run the report "
                "on PostgreSQL for scans and unused indexes."
            )
        present = summary.planned - len(summary.plan_problems)
        self.stdout.write(
            f"  Index plan: {present} of {summary.planned} planned indexes present "
            "and valid."
        )
        for problem in summary.plan_problems:
            self.stdout.write(f"  not present and valid: {problem}")

    def _table(self, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        for line in table_lines(header, rows, indent="  "):
            self.stdout.write(line)


def _path(target: str) -> str:
    """Turn a path or a URL name into a path the URLconf resolves."""
    if target.startswith("/"):
        try:
            resolve(target.split("?", 1)[0])
        except Resolver404:
            raise CommandError(
                f"{target!r} matches no pattern of the project's URLconf; give a "
                "path such as / or a URL name such as dashboard:index."
            ) from None
        return target
    try:
        return reverse(target)
    except NoReverseMatch:
        raise CommandError(
            f"{target!r} is neither a path (start it with /) nor the name of a "
            "URL without arguments; for a URL with arguments give its path."
        ) from None


def _unreadable(alias: str, error: Exception) -> CommandError:
    return CommandError(
        f"Could not read database {alias!r} ({error}); manage.py "
        f"optimize_performance --database {alias} says what is wrong with its "
        "settings."
    )


def _check_host(host: str) -> None:
    # A host ALLOWED_HOSTS rejects would only show as 400 answers, after
    # Django logged a traceback for each request: ask Django's own check first.
    try:
        RequestFactory(HTTP_HOST=host).get("/").get_host()
    except DisallowedHost:
        allowed = ", ".join(map(repr, settings.ALLOWED_HOSTS)) or "none is set"
        raise CommandError(
            f"ALLOWED_HOSTS does not accept the host {host!r}; pass --host with "
            f"one it accepts ({allowed})."
        ) from None


def _check_status(page: PageMeasurement) -> None:
    if 300 <= page.status_code < 400:
        raise CommandError(
            f"{page.path} answered {page.status_code}, a redirect to "
            f"{page.location or 'nowhere'}: the figures would be the redirect's. "
            "Give the path it leads to; a page that redirects to a login page "
            "needs a login, which the report does not have."
        )
    if page.status_code >= 400:
        raise CommandError(
            f"{page.path} answered {page.status_code}; the report requests pages "
            "as an anonymous user, so measure pages that need no login."
        )


def _cut(text: str, width: int) -> str:
    """Shorten a statement to one line, its long column list first."""
    text = re.sub(r"\s+", " ", text).strip()
    text = _COLUMN_LIST.sub(r"\1 ... \2 ", text, count=1)
    return text if len(text) <= width else f"{text[: width - 3]}..."


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _json(
    runs: int,
    pages: Sequence[PageMeasurement],
    dashboards: dict[str, dict[str, int]],
    statements: list[Statement] | Unavailable,
    indexes: IndexSummary,
) -> dict[str, Any]:
    return {
        "runs": runs,
        "pages": [
            {
                "path": page.path,
                "status_code": page.status_code,
                "cold": {
                    "median_ms": page.cold_ms,
                    "median_queries": page.cold_queries,
                    "runs": [dataclasses.asdict(run) for run in page.cold],
                },
                "warm": {
                    "median_ms": page.warm_ms,
                    "median_queries": page.warm_queries,
                    "runs": [dataclasses.asdict(run) for run in page.warm],
                },
                "query_shapes_cold": [
                    dataclasses.asdict(shape) for shape in page.cold_shapes
                ],
                "dashboard_cache": page.cache_counters,
            }
            for page in pages
        ],
        "dashboard_cache": {
            "source": COUNTERS_SOURCE,
            "dashboards": {
                name: {**counts, "hit_rate": hit_rate(counts)}
                for name, counts in sorted(dashboards.items())
            },
        },
        "top_statements": {"available": False, **dataclasses.asdict(statements)}
        if isinstance(statements, Unavailable)
        else [dataclasses.asdict(statement) for statement in statements],
        "indexes": dataclasses.asdict(indexes),
    }
