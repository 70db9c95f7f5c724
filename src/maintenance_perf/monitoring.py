"""Measure what a page costs: queries, milliseconds, cache use, top statements.

:func:`count_queries` records every statement run on this thread's
connections while a block runs, and groups them by *shape* (the statement
with its literals, placeholders and ``IN`` lists collapsed), so a statement
repeated once per row stands out with its count. :func:`measure_url` requests
a page cold and warm through Django's test client; :func:`top_statements`
reads PostgreSQL's ``pg_stat_statements`` and says why when it cannot.
"""

from __future__ import annotations

import contextlib
import logging
import re
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from maintenance_perf.cache import EPOCH, bump_versions, counters
from maintenance_perf.index_report import postgresql_index_usage
from maintenance_perf.indexes import build_plan, database_index_status, mapped_models

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.http.response import HttpResponseBase
    from django.test import Client

logger = logging.getLogger(__name__)

#: Quoted identifiers are kept; string literals, numbers and placeholders
#: become ``?``. Identifiers go first so digits inside them stay.
_TOKEN = re.compile(
    r"""
    (?P<identifier>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])
    | (?P<string>'(?:[^']|'')*')
    | (?P<placeholder>%\(\w+\)s|%s|\$\d+|\?)
    | (?P<number>(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.]))
    """,
    re.VERBOSE,
)
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)
_VALUES_LIST = re.compile(r"(\(\?(?:, \?)*\))(?:, \1)+")
_SPACE = re.compile(r"\s+")
_COMMA = re.compile(r"\s*,\s*")
_INNER_SPACE = re.compile(r"(?<=\()\s+|\s+(?=\))")


def query_shape(sql: str) -> str:
    """Return the shape of a statement: what stays when its values change.

    Literals and parameter placeholders become ``?``, an ``IN`` list of any
    length becomes ``IN (...)`` and repeated rows of a multi-row ``VALUES``
    one row followed by ``...``, so the per-row lookups of an N+1 loop, or
    two pages of different sizes, give one shape.
    """

    def replace(match: re.Match[str]) -> str:
        return match.group() if match.group("identifier") else "?"

    shape = _TOKEN.sub(replace, _SPACE.sub(" ", sql.strip()))
    # Hand-written SQL spaces its commas as it likes; one way gives one shape.
    shape = _INNER_SPACE.sub("", _COMMA.sub(", ", shape))
    shape = _IN_LIST.sub("IN (...)", shape)
    return _VALUES_LIST.sub(r"\1, ...", shape)


@dataclass(frozen=True)
class RecordedQuery:
    """One statement as the database connection ran it."""

    alias: str
    sql: str
    duration_ms: float
    #: ``True`` for ``executemany()``, counted as one statement.
    many: bool = False

    @property
    def shape(self) -> str:
        return query_shape(self.sql)


@dataclass(frozen=True)
class QueryShape:
    """Statements of one shape: how often they ran and how long they took."""

    shape: str
    count: int
    total_ms: float
    #: The database aliases they ran on.
    aliases: tuple[str, ...]


@dataclass
class QueryCount:
    """What :func:`count_queries` recorded, in the order the statements ran."""

    queries: list[RecordedQuery] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.queries)

    @property
    def total_ms(self) -> float:
        return sum(query.duration_ms for query in self.queries)

    def shapes(self) -> list[QueryShape]:
        """Group the statements by shape, the most frequent first."""
        grouped: dict[str, list[RecordedQuery]] = defaultdict(list)
        for query in self.queries:
            grouped[query.shape].append(query)
        shapes = [
            QueryShape(
                shape,
                len(queries),
                sum(query.duration_ms for query in queries),
                tuple(sorted({query.alias for query in queries})),
            )
            for shape, queries in grouped.items()
        ]
        return sorted(shapes, key=lambda shape: (-shape.count, -shape.total_ms))

    def repeated(self, at_least: int = 2) -> list[QueryShape]:
        """Return the shapes that ran ``at_least`` times, the N+1 signature."""
        return [shape for shape in self.shapes() if shape.count >= at_least]

    def describe(self, limit: int = 10) -> str:
        """Summarise the count and the most frequent shapes for people."""
        lines = [f"{self.count} queries in {self.total_ms:.1f} ms"]
        shapes = self.shapes()
        for shape in shapes[:limit]:
            lines.append(f"  {shape.count} x ({shape.total_ms:.1f} ms) {shape.shape}")
        if len(shapes) > limit:
            lines.append(f"  ... and {len(shapes) - limit} more shapes")
        return "\n".join(lines)


class _Recorder:
    """An ``execute_wrapper`` that times each statement into a QueryCount."""

    def __init__(self, alias: str, counted: QueryCount) -> None:
        self.alias = alias
        self.counted = counted

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: Any,
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            self.counted.queries.append(
                RecordedQuery(self.alias, sql, duration_ms, many)
            )


@contextlib.contextmanager
def count_queries(using: str | Iterable[str] | None = None) -> Iterator[QueryCount]:
    """Record every statement the block runs, on every database by default.

    ``using`` limits the count to one alias or several. Only this thread's
    connections are watched, which is where Django's test client and a
    direct view call run.
    """
    aliases = [using] if isinstance(using, str) else list(using or connections)
    counted = QueryCount()

    with contextlib.ExitStack() as stack:
        for alias in aliases:
            recorder = _Recorder(alias, counted)
            stack.enter_context(connections[alias].execute_wrapper(recorder))
        yield counted


def _failure(counted: QueryCount, expected: str) -> AssertionError:
    repeated = counted.repeated()
    lines = [f"Expected {expected}, ran {counted.count}."]
    if repeated:
        lines.append("Repeated shapes (count, total time, statement):")
        lines.extend(
            f"  {shape.count} x ({shape.total_ms:.1f} ms) {shape.shape}"
            for shape in repeated
        )
    lines.append(counted.describe(limit=20))
    return AssertionError("\n".join(lines))


@contextlib.contextmanager
def assert_max_queries(
    maximum: int, using: str | Iterable[str] | None = None
) -> Iterator[QueryCount]:
    """Fail when the block runs more than ``maximum`` statements.

    The ``AssertionError`` lists the repeated shapes first, with their counts,
    since a loop that queries once per row is the usual cause.
    """
    with count_queries(using) as counted:
        yield counted

    if counted.count > maximum:
        raise _failure(counted, f"at most {maximum} queries")


@contextlib.contextmanager
def assert_num_queries(
    expected: int, using: str | Iterable[str] | None = None
) -> Iterator[QueryCount]:
    """Fail unless the block runs exactly ``expected`` statements."""
    with count_queries(using) as counted:
        yield counted

    if counted.count != expected:
        raise _failure(counted, f"exactly {expected} queries")


# --- pages, cold and warm ---------------------------------------------------


@dataclass(frozen=True)
class PageRun:
    """One request of a page: its time and its statements."""

    ms: float
    queries: int


@dataclass(frozen=True)
class PageMeasurement:
    """A page requested ``runs`` times cold and ``runs`` times warm."""

    path: str
    status_code: int
    cold: list[PageRun]
    warm: list[PageRun]
    #: The statement shapes of the last cold request, most frequent first.
    cold_shapes: list[QueryShape]
    #: The dashboard cache counters these requests added, per dashboard.
    cache_counters: dict[str, dict[str, int]]
    #: Where the page redirects to, for a 3xx answer; empty otherwise.
    location: str = ""

    @property
    def cold_ms(self) -> float:
        return statistics.median(run.ms for run in self.cold)

    @property
    def warm_ms(self) -> float:
        return statistics.median(run.ms for run in self.warm)

    @property
    def cold_queries(self) -> float:
        return statistics.median(run.queries for run in self.cold)

    @property
    def warm_queries(self) -> float:
        return statistics.median(run.queries for run in self.warm)


def allowed_host() -> str:
    """Return a host name the project's ``ALLOWED_HOSTS`` accepts."""
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    if not hosts:
        # An empty list allows localhost under DEBUG; "*" allows anything.
        return "localhost"
    return hosts[0].lstrip(".")


def invalidate_all_dashboards() -> None:
    """Make every cached dashboard stale with one version bump."""
    bump_versions([EPOCH])


def measure_url(
    path: str, runs: int = 5, client: Client | None = None
) -> PageMeasurement:
    """Request ``path`` cold ``runs`` times, then warm ``runs`` times.

    A cold request follows a bump of the global cache version, so every
    dashboard is recomputed (the cache's other keys are left alone); the
    warm requests follow the last cold one. ``client`` defaults to a test
    client for the first host ``ALLOWED_HOSTS`` accepts.
    """
    from django.test import Client

    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    client = client or Client(HTTP_HOST=allowed_host())
    before = counters.all()

    def request() -> tuple[PageRun, HttpResponseBase, QueryCount]:
        with count_queries() as counted:
            started = time.perf_counter()
            response = client.get(path)
            elapsed_ms = (time.perf_counter() - started) * 1000
        return PageRun(elapsed_ms, counted.count), response, counted

    cold = []
    for _ in range(runs):
        invalidate_all_dashboards()
        run, response, counted = request()
        cold.append(run)
    warm = [request()[0] for _ in range(runs)]

    return PageMeasurement(
        path,
        response.status_code,
        cold,
        warm,
        counted.shapes(),
        _counter_changes(before, counters.all()),
        response.get("Location", ""),
    )


def _counter_changes(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    changes = {}
    for dashboard, counts in after.items():
        earlier = before.get(dashboard, {})
        delta = {kind: count - earlier.get(kind, 0) for kind, count in counts.items()}
        if any(delta.values()):
            changes[dashboard] = delta
    return changes


def hit_rate(counts: dict[str, int]) -> float | None:
    """Return hits over lookups (hits and misses); ``None`` before any lookup."""
    lookups = counts["hits"] + counts["misses"]
    return counts["hits"] / lookups if lookups else None


# --- pg_stat_statements -----------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One row of pg_stat_statements: a normalised statement and its totals."""

    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int


@dataclass(frozen=True)
class Unavailable:
    """Why a figure cannot be read, and what would make it readable."""

    reason: str
    how_to_enable: str


PRELOAD_HINT = (
    "Add it to shared_preload_libraries and restart PostgreSQL, e.g. as a "
    "superuser: ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements' "
    "(keep any libraries already listed there), then restart the server."
)

#: Column names of the timings: PostgreSQL 13 (pg_stat_statements 1.8) split
#: planning from execution and renamed them.
_TIME_COLUMNS = (
    ("total_exec_time", "mean_exec_time"),
    ("total_time", "mean_time"),
)


def time_columns(columns: Iterable[str]) -> tuple[str, str] | None:
    """Pick the total and mean time columns a pg_stat_statements view has."""
    present = set(columns)
    for total, mean in _TIME_COLUMNS:
        if {total, mean} <= present:
            return total, mean
    return None


#: What pg_stat_statements shows instead of another user's statement.
HIDDEN_QUERY = "<insufficient privilege>"


def unavailable_from_error(error: DatabaseError, alias: str) -> Unavailable:
    """Explain a failed read of pg_stat_statements."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else type(error).__name__
    if "shared_preload_libraries" in message:
        return Unavailable(
            "pg_stat_statements is installed in the database but not loaded by "
            f"the server ({message}).",
            PRELOAD_HINT,
        )
    if "permission denied" in message:
        return Unavailable(
            f"the user of database {alias!r} may not read pg_stat_statements "
            f"({message}).",
            "Grant it the pg_read_all_stats role, or run the report as a user "
            "that has it.",
        )
    return Unavailable(
        f"reading pg_stat_statements failed ({type(error).__name__}: {message}).",
        "Check that the extension is installed and up to date "
        "(ALTER EXTENSION pg_stat_statements UPDATE) and that the database "
        f"user of {alias!r} may read it.",
    )


def top_statements(
    using: str = DEFAULT_DB_ALIAS, limit: int = 10
) -> list[Statement] | Unavailable:
    """Return the statements that took the most time in this database.

    Reads pg_stat_statements inside a savepoint, so a failure leaves a
    surrounding transaction usable; when the extension is missing, not
    loaded or not readable, returns :class:`Unavailable` with the fix.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":  # pragma: other databases only
        return Unavailable(
            f"database {using!r} is {connection.display_name}; pg_stat_statements "
            "is a PostgreSQL extension.",
            "Run the report with --database naming a PostgreSQL database.",
        )

    try:  # pragma: postgresql only
        with transaction.atomic(using=using), connection.cursor() as cursor:
            relation = _statements_relation(cursor)
            if relation is None:
                return _not_created(cursor, using)
            return _read_statements(connection, cursor, relation, limit)
    except DatabaseError as error:  # pragma: postgresql only
        unavailable = unavailable_from_error(error, using)
        logger.info("pg_stat_statements: %s", unavailable.reason)
        return unavailable


def _statements_relation(cursor: Any) -> str | None:  # pragma: postgresql only
    """Return the quoted name of the pg_stat_statements view, if created."""
    cursor.execute(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'"
    )
    row = cursor.fetchone()
    return f"{row[0]}.pg_stat_statements" if row else None


def _not_created(cursor: Any, using: str) -> Unavailable:  # pragma: postgresql only
    cursor.execute(
        "SELECT pg_catalog.current_database(), "
        "pg_catalog.current_setting('shared_preload_libraries'), "
        "EXISTS (SELECT FROM pg_catalog.pg_available_extensions "
        "WHERE name = 'pg_stat_statements')"
    )
    database, preloaded, available = cursor.fetchone()
    return not_created(database, using, preloaded, available)


def not_created(
    database: str, alias: str, preloaded: str, available: bool
) -> Unavailable:
    """Explain a database without the extension, with every step still needed.

    ``preloaded`` is the server's ``shared_preload_libraries``; ``available``
    whether the server has the extension's files at all.
    """
    create = f"Run CREATE EXTENSION pg_stat_statements; in database {database!r}."
    if not available:
        return Unavailable(
            "the pg_stat_statements extension is not installed on the server.",
            "Install PostgreSQL's contrib modules (the postgresql-contrib "
            f"package on most systems). {PRELOAD_HINT} {create}",
        )
    if "pg_stat_statements" not in _library_names(preloaded):
        create = f"{PRELOAD_HINT} {create}"
    return Unavailable(
        f"the pg_stat_statements extension is not created in database "
        f"{database!r} ({alias!r}).",
        create,
    )


def _library_names(setting: str) -> set[str]:
    """Read shared_preload_libraries: comma-separated, maybe quoted or paths."""
    names = set()
    for item in setting.split(","):
        name = item.strip().strip('"').rsplit("/", 1)[-1]
        names.add(name.removesuffix(".so"))
    return names


def _read_statements(  # pragma: postgresql only
    connection: BaseDatabaseWrapper, cursor: Any, relation: str, limit: int
) -> list[Statement] | Unavailable:
    cursor.execute(f"SELECT * FROM {relation} LIMIT 0")
    columns = time_columns(column[0] for column in cursor.description)
    if columns is None:
        return Unavailable(
            "this version of pg_stat_statements has neither total_exec_time nor "
            "total_time.",
            "Update the extension: ALTER EXTENSION pg_stat_statements UPDATE.",
        )

    total, mean = columns
    # The view holds every database's statements; the report is about one.
    cursor.execute(
        f"SELECT s.query, s.calls, s.{total}, s.{mean}, s.rows "
        f"FROM {relation} s WHERE s.dbid = (SELECT d.oid FROM "
        "pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()) "
        f"ORDER BY s.{total} DESC LIMIT %s",
        [limit],
    )
    return [
        Statement(
            shown_query(query), int(calls), float(total_ms), float(mean_ms), int(rows)
        )
        for query, calls, total_ms, mean_ms, rows in cursor.fetchall()
    ]


def shown_query(query: str | None) -> str:
    """Return a statement's text, saying why and what to do where it is hidden."""
    if query is None or query == HIDDEN_QUERY:
        # Short, so that a table's cut still shows the fix.
        return "<hidden: needs pg_read_all_stats>"
    return query


# --- index usage ------------------------------------------------------------


@dataclass(frozen=True)
class IndexSummary:
    """What the index report says, in brief, about the mapped models' tables."""

    database: str
    #: Index usage counts exist on PostgreSQL only.
    statistics: bool
    indexes: int
    #: ``table.index`` names never scanned and enforcing nothing (PostgreSQL).
    unused: list[str]
    #: ``table.index`` names a failed concurrent build left (PostgreSQL).
    invalid: list[str]
    planned: int
    #: ``name (status)`` of each planned index that is missing or INVALID.
    plan_problems: list[str]


def index_summary(using: str = DEFAULT_DB_ALIAS) -> IndexSummary:
    """Summarise index usage and the index plan, as the index report sees them."""
    connection = connections[using]
    plan = build_plan()
    statuses = [
        (planned, database_index_status(connection, planned))
        for planned in plan.indexes
    ]
    problems = [
        f"{planned.index.name} ({status})"
        for planned, status in statuses
        if status != "valid"
    ]

    if connection.vendor == "postgresql":  # pragma: postgresql only
        tables = {planned.table for planned in plan.indexes}
        tables.update(model._meta.db_table for model in mapped_models())
        usage = postgresql_index_usage(connection, tables)
    else:  # pragma: other databases only
        # Other databases count no scans: nothing can be called unused.
        usage = []

    return IndexSummary(
        using,
        connection.vendor == "postgresql",
        len(usage),
        [f"{index.table}.{index.name}" for index in usage if index.unused],
        [f"{index.table}.{index.name}" for index in usage if not index.valid],
        len(statuses),
        problems,
    )
