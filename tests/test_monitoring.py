"""Query counting, page measurement, pg_stat_statements and the index summary."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.http import HttpResponseNotFound
from django.test import override_settings
from django.urls import path
from django.utils import timezone

from core.models import Location
from equipment.models import Equipment
from maintenance_perf import monitoring
from maintenance_perf.management.commands import (
    maintenance_perf_report as report_command,
)
from maintenance_perf.monitoring import (
    PRELOAD_HINT,
    Statement,
    Unavailable,
    allowed_host,
    assert_max_queries,
    assert_num_queries,
    count_queries,
    hit_rate,
    index_summary,
    measure_url,
    not_created,
    query_shape,
    shown_query,
    time_columns,
    top_statements,
    unavailable_from_error,
)
from tests import factories
from tests.conftest import IN_CI

#: The error PostgreSQL 15 raises when the extension exists in a database but
#: the server was started without it in shared_preload_libraries (SQLSTATE
#: 55000), copied from this project's test server before it preloaded it.
NOT_PRELOADED_ERROR = "pg_stat_statements must be loaded via shared_preload_libraries"


def location_names_one_by_one() -> list[str]:
    """The N+1 pattern: one query for the list, one more per location."""
    return [
        Equipment.objects.filter(location=location).count() and location.name
        for location in Location.objects.all()
    ]


# --- query shapes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "shape"),
    [
        (
            'SELECT "t"."id" FROM "t" WHERE "t"."id" IN (%s, %s, %s) LIMIT 21',
            'SELECT "t"."id" FROM "t" WHERE "t"."id" IN (...) LIMIT ?',
        ),
        (
            "SELECT * FROM t WHERE a = 'it''s' AND b = -1.5e3",
            "SELECT * FROM t WHERE a = ? AND b = ?",
        ),
        (
            "SELECT * FROM t WHERE a = $1 AND b = %(name)s",
            "SELECT * FROM t WHERE a = ? AND b = ?",
        ),
        ("select *\n  from t   where a in ( 1,2 )", "select * from t where a IN (...)"),
        (
            'SELECT "equipmen_status_674fc1", t2.col3 FROM t2',
            'SELECT "equipmen_status_674fc1", t2.col3 FROM t2',
        ),
        (
            "INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s), (%s, %s)",
            "INSERT INTO t (a, b) VALUES (?, ?), ...",
        ),
        (
            "INSERT INTO t (a,b) VALUES (1,'a'),(2,'b') ,( 3 , 'c')",
            "INSERT INTO t (a, b) VALUES (?, ?), ...",
        ),
    ],
)
def test_query_shape_collapses_values_but_keeps_identifiers(
    sql: str, shape: str
) -> None:
    assert query_shape(sql) == shape


# --- counting ---------------------------------------------------------------


@pytest.mark.django_db
def test_count_queries_groups_a_per_row_lookup_by_shape() -> None:
    for name in ("North", "South", "East"):
        factories.equipment(factories.location(name))

    with count_queries() as counted:
        location_names_one_by_one()

    assert counted.count == 4
    shapes = counted.shapes()
    assert [shape.count for shape in shapes] == [3, 1]
    assert "COUNT(*)" in shapes[0].shape
    assert shapes[0].aliases == ("default",)
    assert counted.repeated() == shapes[:1]
    assert counted.total_ms >= shapes[0].total_ms > 0


@pytest.mark.django_db
def test_count_queries_one_alias_and_executemany() -> None:
    with count_queries("default") as counted, connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Location._meta.db_table} SET name = %s WHERE id = %s",
            [("a", 1), ("b", 2)],
        )

    assert counted.count == 1
    assert counted.queries[0].many is True


def test_query_count_describe_names_the_shapes_left_out() -> None:
    counted = monitoring.QueryCount(
        [
            monitoring.RecordedQuery("default", f"SELECT {n} FROM t{n}", 1.0)
            for n in range(3)
        ]
    )

    described = counted.describe(limit=2)

    assert described.splitlines()[0] == "3 queries in 3.0 ms"
    assert described.endswith("... and 1 more shapes")


@pytest.mark.django_db
def test_assert_max_queries_lists_the_repeated_shapes() -> None:
    for name in ("North", "South"):
        factories.location(name)

    with pytest.raises(AssertionError) as failure, assert_max_queries(2):
        location_names_one_by_one()

    message = str(failure.value)
    assert message.startswith("Expected at most 2 queries, ran 3.\nRepeated shapes")
    assert "  2 x (" in message


@pytest.mark.django_db
def test_assert_max_queries_within_the_limit() -> None:
    factories.location("North")

    with assert_max_queries(2) as counted:
        location_names_one_by_one()

    assert counted.count == 2


@pytest.mark.django_db
def test_assert_num_queries_exact_count() -> None:
    with assert_num_queries(1):
        list(Location.objects.all())

    with pytest.raises(AssertionError) as failure, assert_num_queries(2):
        list(Location.objects.all())

    assert str(failure.value).startswith(
        "Expected exactly 2 queries, ran 1.\n1 queries"
    )


# --- pages ------------------------------------------------------------------


@pytest.mark.django_db
def test_measure_url_cold_recomputes_and_warm_reads_the_cache() -> None:
    area = factories.location("North")
    factories.equipment(area)

    measured = measure_url("/", runs=3)

    assert measured.status_code == 200
    assert len(measured.cold) == len(measured.warm) == 3
    assert measured.cold_queries == 8
    assert measured.warm_queries == 0
    assert measured.cold_ms > measured.warm_ms
    assert sum(shape.count for shape in measured.cold_shapes) == 8
    assert measured.cache_counters == {
        "dashboard.views.DashboardView": {
            "hits": 3,
            "misses": 3,
            "stale": 0,
            "recomputes": 3,
            "errors": 0,
        }
    }


@pytest.mark.django_db
def test_measure_url_naive_page_repeats_a_shape_per_location() -> None:
    for name in ("North", "South", "East", "West"):
        factories.equipment(factories.location(name))

    measure_url("/", runs=1)

    measured = measure_url("/naive/", runs=1)

    assert measured.cold_queries == measured.warm_queries
    assert measured.cache_counters == {}
    assert max(shape.count for shape in measured.cold_shapes) >= 4


def test_measure_url_needs_a_run() -> None:
    with pytest.raises(ValueError, match="runs must be at least 1, not 0"):
        measure_url("/", runs=0)


@pytest.mark.parametrize(
    ("hosts", "host"),
    [
        ([], "localhost"),
        (["*"], "localhost"),
        ([".example.com", "localhost"], "example.com"),
        (["*", "maintenance.internal"], "maintenance.internal"),
    ],
)
def test_allowed_host_is_one_the_settings_accept(hosts: list[str], host: str) -> None:
    with override_settings(ALLOWED_HOSTS=hosts):
        assert allowed_host() == host


def test_hit_rate_of_the_dashboard_counters() -> None:
    counts = {"hits": 3, "misses": 1, "stale": 0, "recomputes": 1, "errors": 0}

    assert hit_rate(counts) == 0.75
    assert hit_rate({**counts, "hits": 0, "misses": 0}) is None


# --- pg_stat_statements: what needs no server -------------------------------


@pytest.mark.parametrize(
    ("columns", "chosen"),
    [
        (
            ["query", "calls", "total_exec_time", "mean_exec_time"],
            ("total_exec_time", "mean_exec_time"),
        ),
        (["query", "calls", "total_time", "mean_time"], ("total_time", "mean_time")),
        (["query", "calls"], None),
    ],
)
def test_time_columns_before_and_after_postgresql_13(
    columns: list[str], chosen: tuple[str, str] | None
) -> None:
    assert time_columns(columns) == chosen


@pytest.mark.parametrize(
    ("message", "reason", "hint"),
    [
        (
            f"{NOT_PRELOADED_ERROR}\n",
            "installed in the database but not loaded by the server",
            PRELOAD_HINT,
        ),
        (
            "permission denied for view pg_stat_statements",
            "the user of database 'default' may not read pg_stat_statements",
            "pg_read_all_stats",
        ),
        (
            'column "toplevel" does not exist',
            'failed (DatabaseError: column "toplevel" does not exist)',
            "ALTER EXTENSION pg_stat_statements UPDATE",
        ),
        ("", "failed (DatabaseError: DatabaseError)", "UPDATE"),
    ],
)
def test_unavailable_from_error_says_why_and_how(
    message: str, reason: str, hint: str
) -> None:
    unavailable = unavailable_from_error(DatabaseError(message), "default")

    assert reason in unavailable.reason
    assert hint in unavailable.how_to_enable


@pytest.mark.parametrize(
    ("preloaded", "available", "steps"),
    [
        ("", True, [PRELOAD_HINT, "CREATE EXTENSION"]),
        ('auto_explain, "$libdir/pg_stat_statements"', True, ["CREATE EXTENSION"]),
        ("pg_stat_statements.so", True, ["CREATE EXTENSION"]),
        (
            "pg_stat_statements",
            False,
            ["postgresql-contrib", PRELOAD_HINT, "CREATE EXTENSION"],
        ),
    ],
)
def test_not_created_hint_names_every_step_still_needed(
    preloaded: str, available: bool, steps: list[str]
) -> None:
    unavailable = not_created("plant", "default", preloaded, available)

    positions = [unavailable.how_to_enable.find(step) for step in steps]
    assert -1 not in positions
    assert positions == sorted(positions)
    assert (PRELOAD_HINT in unavailable.how_to_enable) is (PRELOAD_HINT in steps)
    assert "database 'plant'" in unavailable.how_to_enable


@pytest.mark.django_db
def test_top_statements_on_another_database() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("covers databases other than PostgreSQL")

    unavailable = top_statements()

    assert isinstance(unavailable, Unavailable)
    assert unavailable.reason == (
        "database 'default' is SQLite; pg_stat_statements is a PostgreSQL extension."
    )


# --- pg_stat_statements on the real server ----------------------------------


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


@pytest.fixture
def extension(postgresql: None) -> None:
    """Create pg_stat_statements in the test database, within the test."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_preload_libraries")
        preloaded = cursor.fetchone()[0]
    if "pg_stat_statements" not in preloaded:
        message = (
            f"PostgreSQL does not preload pg_stat_statements (shared_preload_"
            f"libraries is {preloaded!r}); .ci/run shows how to enable it"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def stand_in(monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Point top_statements at a temporary view standing in for the extension's."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY VIEW mperf_stand_in AS {body}")
    monkeypatch.setattr(
        monitoring, "_statements_relation", lambda cursor: "mperf_stand_in"
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_top_statements_extension_not_created(postgresql: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION IF EXISTS pg_stat_statements")

    unavailable = top_statements()

    database = connection.settings_dict["NAME"]
    assert isinstance(unavailable, Unavailable)
    assert unavailable.reason == (
        f"the pg_stat_statements extension is not created in database "
        f"{database!r} ('default')."
    )
    assert unavailable.how_to_enable.endswith(
        f"Run CREATE EXTENSION pg_stat_statements; in database {database!r}."
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_top_statements_lists_a_statement_this_test_ran(extension: None) -> None:
    # pg_stat_statements ignores column aliases when it groups statements, so
    # the probe's shape is one nothing else in the suite runs.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM core_location WHERE id < 0 AND code LIKE 'probe%'"
        )

    statements = top_statements(limit=10_000)

    assert isinstance(statements, list)
    probes = [
        statement
        for statement in statements
        if statement.query
        == "SELECT count(*) FROM core_location WHERE id < $1 AND code LIKE $2"
    ]
    assert len(probes) == 1
    assert probes[0].calls == 1
    assert probes[0].rows == 1
    assert probes[0].total_ms == probes[0].mean_ms > 0
    assert [s.total_ms for s in statements] == sorted(
        (s.total_ms for s in statements), reverse=True
    )
    assert len(top_statements(limit=1)) == 1  # type: ignore[arg-type]


@pytest.mark.postgres
@pytest.mark.django_db
def test_top_statements_not_preloaded_keeps_the_outer_transaction(
    postgresql: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that preloads the extension cannot fail this way on demand, so
    # a function raises PostgreSQL's own error for it, inside the server.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION pg_temp.mperf_unloaded() RETURNS TABLE (dbid oid, "
            "query text, calls bigint, total_exec_time float8, "
            "mean_exec_time float8, rows bigint) LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{NOT_PRELOADED_ERROR}' USING ERRCODE = '55000'; "
            "END $$"
        )
    stand_in(monkeypatch, "SELECT * FROM pg_temp.mperf_unloaded()")
    area = factories.location("North")

    with transaction.atomic():
        factories.location("South")
        unavailable = top_statements()
        factories.equipment(area)

    assert isinstance(unavailable, Unavailable)
    assert unavailable.reason == (
        "pg_stat_statements is installed in the database but not loaded by the "
        f"server ({NOT_PRELOADED_ERROR})."
    )
    assert unavailable.how_to_enable == PRELOAD_HINT
    assert Location.objects.count() == 2
    assert Equipment.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_top_statements_reads_the_columns_before_postgresql_13(
    postgresql: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(
        monkeypatch,
        "SELECT d.oid AS dbid, q.query, q.calls, q.total_time, q.mean_time, q.rows "
        "FROM pg_database d, (VALUES ('SELECT $1', 4::bigint, 2.0::float8, "
        "0.5::float8, 4::bigint), ('SELECT $2', 1, 9.0, 9.0, 0)) "
        "AS q (query, calls, total_time, mean_time, rows) "
        "WHERE d.datname IN (current_database(), 'template0')",
    )

    assert top_statements() == [
        Statement("SELECT $2", 1, 9.0, 9.0, 0),
        Statement("SELECT $1", 4, 2.0, 0.5, 4),
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_top_statements_unknown_columns(
    postgresql: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(monkeypatch, "SELECT 'SELECT 1'::text AS query, 1::bigint AS calls")

    unavailable = top_statements()

    assert isinstance(unavailable, Unavailable)
    assert "neither total_exec_time nor total_time" in unavailable.reason


# --- index usage ------------------------------------------------------------


@pytest.mark.django_db
def test_index_summary_applied_plan() -> None:
    summary = index_summary()

    assert summary.planned == 7
    assert summary.plan_problems == []
    assert summary.invalid == []
    assert summary.statistics is (connection.vendor == "postgresql")
    assert (summary.indexes > 7) is summary.statistics


@pytest.mark.django_db
def test_index_summary_names_a_missing_planned_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX equipmen_status_674fc1")

    summary = index_summary()

    assert summary.plan_problems == ["equipmen_status_674fc1 (missing)"]
    assert "equipment_equipment.equipmen_status_674fc1" not in summary.unused


# --- the report command -----------------------------------------------------

urlpatterns = [
    path("gone/", lambda request: HttpResponseNotFound()),
    path("old/", lambda request: redirect_to_login("/old/")),
]


def report(*args: str) -> str:
    stdout = io.StringIO()
    call_command("maintenance_perf_report", *args, stdout=stdout)
    return stdout.getvalue()


@pytest.fixture
def two_sites() -> None:
    for name in ("North", "South"):
        equipment = factories.equipment(factories.location(name))
        factories.activity(equipment, "scheduled", timezone.now())


@pytest.mark.django_db
def test_report_tables_compare_the_two_dashboards(two_sites: None) -> None:
    text = report("dashboard:naive", "/", "--runs", "2", "--top", "5")

    lines = text.splitlines()
    assert lines[0] == (
        "Pages, median of 2 requests each; a cold request follows a bump of every "
        "dashboard's cache version."
    )
    naive, fast = (line.split() for line in lines[2:4])
    assert naive[:2] == ["/naive/", "200"]
    assert naive[3] == naive[5]
    assert fast[:2] == ["/", "200"]
    assert (fast[3], fast[5]) == ("8", "0")
    assert (
        "Repeated query shapes of a cold /naive/ (count, total time, statement):"
        in text
    )
    assert "Repeated query shapes of a cold / " not in text
    assert (
        "Dashboard cache: django-maintenance-perf's dashboard cache counters in this "
        "process, for the requests above; not Redis INFO" in text
    )
    counters_row = next(
        line for line in lines if "dashboard.views.DashboardView" in line
    )
    assert counters_row.split()[1:] == ["2", "2", "0", "2", "0", "50%"]
    assert "  unavailable: " in text
    assert "  how to enable it: " in text
    assert "  Index plan: 7 of 7 planned indexes present and valid." in text


@pytest.mark.django_db
def test_report_json_has_every_figure(two_sites: None) -> None:
    data = json.loads(report("/", "--runs", "3", "--json"))

    page = data["pages"][0]
    assert data["runs"] == 3
    assert (page["path"], page["status_code"]) == ("/", 200)
    assert page["cold"]["median_queries"] == 8
    assert page["warm"]["median_queries"] == 0
    assert [run["queries"] for run in page["cold"]["runs"]] == [8, 8, 8]
    assert sum(shape["count"] for shape in page["query_shapes_cold"]) == 8
    assert "not Redis INFO" in data["dashboard_cache"]["source"]
    assert (
        data["dashboard_cache"]["dashboards"]["dashboard.views.DashboardView"][
            "hit_rate"
        ]
        == 0.5
    )
    assert data["top_statements"]["available"] is False
    expected = "CREATE EXTENSION" if connection.vendor == "postgresql" else "PostgreSQL"
    assert expected in data["top_statements"]["how_to_enable"]
    assert data["indexes"]["planned"] == 7


@pytest.mark.django_db
@pytest.mark.parametrize("as_json", [False, True])
def test_report_lists_top_statements(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    from maintenance_perf.management.commands import maintenance_perf_report

    long_query = "SELECT id, name\n  FROM core_location WHERE " + " AND ".join(
        f"code <> ${n}" for n in range(1, 40)
    )
    wide_query = f"SELECT {', '.join(f'column_{n}' for n in range(20))} FROM plant"
    statements = [
        Statement(long_query, 1200, 3456.7, 2.88, 1200),
        Statement(wide_query, 1, 1.0, 1.0, 1),
    ]
    monkeypatch.setattr(
        maintenance_perf_report, "top_statements", lambda database, top: statements
    )

    output = report("--top", "3", *(["--json"] if as_json else []))

    if as_json:
        assert json.loads(output)["top_statements"][0]["query"] == long_query
    else:
        row = next(line for line in output.splitlines() if "core_location" in line)
        assert row.split()[:4] == ["1,200", "3,456.7", "2.88", "1,200"]
        assert row.endswith("...")
        assert "SELECT id, name FROM core_location WHERE code <> $1" in row
        assert len(row.split(None, 4)[4]) == 90
        assert "  SELECT ... FROM plant\n" in output


@pytest.mark.django_db
def test_report_without_pages_or_cached_dashboards() -> None:
    text = report("/naive/", "--top", "0", "--runs", "1")

    assert "  No cached dashboard was requested." in text
    assert "pg_stat_statements" not in text
    assert report("--top", "0").startswith("\nDashboard cache: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "0"], "--runs must be 1 or more, e.g. --runs 5."),
        (["--top", "-1"], "--top must be 0 or more; --top 0 shows none."),
        (["/nowhere/"], "'/nowhere/' matches no pattern of the project's URLconf"),
        (["nowhere:index"], "'nowhere:index' is neither a path (start it with /)"),
        (["--database", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_report_bad_arguments_say_how_to_fix_them(
    args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as error:
        report(*args)

    assert message in str(error.value)


@pytest.mark.django_db
def test_report_host_the_settings_reject(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CommandError) as error:
        report("/", "--host", "evil.example", "--runs", "1")

    assert str(error.value) == (
        "ALLOWED_HOSTS does not accept the host 'evil.example'; pass --host with "
        "one it accepts ('localhost', '127.0.0.1', 'testserver')."
    )
    # Refused before any request, so Django logged no DisallowedHost.
    assert [r for r in caplog.records if r.name.startswith("django")] == []


@pytest.mark.django_db
def test_report_host_with_debug_and_no_allowed_hosts() -> None:
    with override_settings(DEBUG=True, ALLOWED_HOSTS=[]):
        output = report("/", "--host", "localhost:8000", "--runs", "1", "--top", "0")
    with (
        override_settings(DEBUG=False, ALLOWED_HOSTS=[]),
        pytest.raises(CommandError, match="none is set"),
    ):
        report("/", "--host", "localhost", "--runs", "1")

    assert "/  " in output or " / " in output


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_report_page_that_redirects() -> None:
    with pytest.raises(CommandError) as error:
        report("/old/", "--runs", "1")

    assert str(error.value).startswith(
        "/old/ answered 302, a redirect to /accounts/login/?next=/old/: "
    )


@pytest.mark.django_db
def test_report_database_django_refuses_before_any_page(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse() -> None:
        raise ImproperlyConfigured("Pooling doesn't support persistent connections.")

    monkeypatch.setattr(connection, "ensure_connection", refuse)

    with pytest.raises(CommandError, match=r"^Could not read database 'default'"):
        report("/", "--runs", "1")
    assert [r for r in caplog.records if r.name == "django.request"] == []


@pytest.mark.django_db
def test_report_database_django_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise ImproperlyConfigured("Pooling doesn't support persistent connections.")

    monkeypatch.setattr(report_command, "index_summary", refuse)

    with pytest.raises(CommandError) as error:
        report("--top", "0")

    assert str(error.value) == (
        "Could not read database 'default' (Pooling doesn't support persistent "
        "connections.); manage.py optimize_performance --database default says "
        "what is wrong with its settings."
    )


def test_shown_query_explains_a_hidden_statement() -> None:
    hidden = shown_query("<insufficient privilege>")

    assert "pg_read_all_stats" in hidden
    assert shown_query(None) == hidden
    assert shown_query("SELECT 1") == "SELECT 1"


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_report_page_that_fails() -> None:
    with pytest.raises(CommandError, match="/gone/ answered 404; the report requests"):
        report("/gone/", "--runs", "1")


@pytest.mark.django_db
def test_report_names_a_missing_planned_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX equipmen_status_674fc1")

    text = report("--top", "0")

    assert "  Index plan: 6 of 7 planned indexes present and valid.\n" in text
    assert "  not present and valid: equipmen_status_674fc1 (missing)\n" in text


@pytest.mark.postgres
@pytest.mark.django_db
def test_report_names_an_index_never_scanned(postgresql: None) -> None:
    # A new index has no scans yet, whatever the other tests scanned.
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX mperf_never_scanned ON core_location (code)")

    text = report("--top", "0")

    assert "  never scanned: core_location.mperf_never_scanned\n" in text


@pytest.mark.postgres
@pytest.mark.django_db
def test_report_names_an_invalid_index(postgresql: None) -> None:
    # What a failed concurrent build leaves, set in the catalog within the test.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false "
            "WHERE indexrelid = 'equipmen_status_674fc1'::regclass"
        )

    text = report("--top", "0")

    assert "  INVALID: equipment_equipment.equipmen_status_674fc1\n" in text
    assert "  not present and valid: equipmen_status_674fc1 (invalid)\n" in text
    assert "never scanned, 1 INVALID." in text
