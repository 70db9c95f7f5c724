from __future__ import annotations

import datetime
import json
from io import StringIO
from typing import TYPE_CHECKING, Any

import django
import pytest
from celery.schedules import schedule
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.test import override_settings

from maintenance_perf import advice
from maintenance_perf.advice import (
    Finding,
    at_or_above,
    average_interval,
    beat_findings,
    cache_findings,
    collect,
    connection_findings,
    dashboard_findings,
    database_findings,
    debug_findings,
    index_findings,
    served_dashboards,
)
from maintenance_perf.views import cached_context

if TYPE_CHECKING:
    from django.http import HttpRequest

LOCAL_MEMORY = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
DJANGO_REDIS = "django_redis.cache.RedisCache"
BUILTIN_REDIS = "django.core.cache.backends.redis.RedisCache"
POSTGRESQL = {"ENGINE": "django.db.backends.postgresql", "OPTIONS": {}}


@cached_context(watch=["contenttypes.ContentType"], name="not served")
def unserved_data(request: HttpRequest) -> dict[str, Any]:
    return {}


def ids(findings: list[Finding]) -> list[str]:
    return [finding.id for finding in findings]


def caches(**entry: Any) -> dict[str, Any]:
    return {"default": {"LOCATION": "redis://127.0.0.1:1/0", **entry}}


def run(*args: str) -> str:
    out = StringIO()
    call_command("optimize_performance", *args, stdout=out)
    return out.getvalue()


# --- cache ------------------------------------------------------------------


@override_settings(CACHES={"default": LOCAL_MEMORY}, DEBUG=False)
def test_cache_findings_local_memory_in_production() -> None:
    findings = cache_findings()

    assert ids(findings) == ["cache.local-memory"]
    assert findings[0].level == "warning"
    assert "django_redis.cache.RedisCache" in findings[0].how


@override_settings(CACHES={"default": LOCAL_MEMORY}, DEBUG=True)
def test_cache_findings_local_memory_with_debug_is_fine() -> None:
    assert cache_findings() == []


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
)
def test_cache_findings_dummy_cache() -> None:
    assert ids(cache_findings()) == ["cache.dummy"]


@override_settings(MAINTENANCE_PERF={"CACHE_ALIAS": "nowhere"})
def test_cache_findings_unknown_alias_is_left_to_the_checks() -> None:
    assert cache_findings() == []


@pytest.mark.parametrize(
    ("backend", "options", "missing"),
    [
        (DJANGO_REDIS, {}, "SOCKET_CONNECT_TIMEOUT or SOCKET_TIMEOUT"),
        (DJANGO_REDIS, {"SOCKET_TIMEOUT": 1}, "SOCKET_CONNECT_TIMEOUT"),
        (BUILTIN_REDIS, {"socket_connect_timeout": 1}, "socket_timeout"),
        (BUILTIN_REDIS, {"socket_timeout": None}, "socket_connect_timeout or"),
    ],
)
def test_cache_findings_redis_without_socket_timeouts(
    backend: str, options: dict[str, Any], missing: str
) -> None:
    with override_settings(CACHES=caches(BACKEND=backend, OPTIONS=options)):
        findings = cache_findings()

    assert ids(findings) == ["cache.no-socket-timeout"]
    assert missing in findings[0].title


@pytest.mark.parametrize(
    ("backend", "options"),
    [
        (DJANGO_REDIS, {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}),
        (
            DJANGO_REDIS,
            {
                "CONNECTION_POOL_KWARGS": {
                    "socket_connect_timeout": 1,
                    "socket_timeout": 1,
                }
            },
        ),
        (BUILTIN_REDIS, {"socket_connect_timeout": 1, "socket_timeout": 2}),
    ],
)
def test_cache_findings_redis_with_socket_timeouts(
    backend: str, options: dict[str, Any]
) -> None:
    with override_settings(CACHES=caches(BACKEND=backend, OPTIONS=options)):
        assert cache_findings() == []


@override_settings(
    CACHES=caches(
        BACKEND=DJANGO_REDIS,
        OPTIONS={
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            "IGNORE_EXCEPTIONS": 1,
        },
    )
)
def test_cache_findings_django_redis_ignore_exceptions() -> None:
    findings = cache_findings()

    assert ids(findings) == ["cache.ignore-exceptions"]
    assert "STAMPEDE_WAIT" in findings[0].why


@override_settings(
    CACHES=caches(
        BACKEND=DJANGO_REDIS,
        OPTIONS={"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    ),
    DJANGO_REDIS_IGNORE_EXCEPTIONS=True,
)
def test_cache_findings_django_redis_ignore_exceptions_globally() -> None:
    assert ids(cache_findings()) == ["cache.ignore-exceptions"]


# --- database connections ---------------------------------------------------


def judge(
    version: tuple[int, int] = (5, 2),
    asgi: bool = False,
    pool_installed: bool = True,
    **entry: Any,
) -> list[str]:
    findings = connection_findings(
        "default",
        {**POSTGRESQL, **entry},
        "postgresql",
        django_version=version,
        asgi=asgi,
        pool_installed=pool_installed,
    )
    return ids(findings)


def test_connection_findings_only_for_postgresql() -> None:
    findings = connection_findings(
        "default", {"CONN_MAX_AGE": 0}, "sqlite", django_version=(5, 2), asgi=True
    )

    assert findings == []


def test_connection_findings_connection_per_request() -> None:
    assert judge(CONN_MAX_AGE=0) == ["database.connection-per-request"]


def test_connection_findings_connection_per_request_suggests_the_pool() -> None:
    new = connection_findings(
        "default", POSTGRESQL, "postgresql", django_version=(5, 1), asgi=False
    )
    old = connection_findings(
        "default", POSTGRESQL, "postgresql", django_version=(4, 2), asgi=False
    )

    assert "['pool']" in new[0].how
    assert "pool" not in old[0].how
    assert "PgBouncer" in old[0].how


@pytest.mark.parametrize("max_age", [60, None])
def test_connection_findings_persistent_without_health_checks(
    max_age: int | None,
) -> None:
    assert judge((4, 2), CONN_MAX_AGE=max_age) == ["database.no-health-checks"]


def test_connection_findings_persistent_with_health_checks_on_old_django() -> None:
    assert judge((4, 2), CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True) == []


def test_connection_findings_pool_available() -> None:
    assert judge(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True) == [
        "database.pool-available"
    ]


@pytest.mark.parametrize("version", [(4, 2), (5, 2)])
def test_connection_findings_persistent_under_asgi(version: tuple[int, int]) -> None:
    findings = connection_findings(
        "default",
        {**POSTGRESQL, "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True},
        "postgresql",
        django_version=version,
        asgi=True,
    )

    assert ids(findings) == ["database.persistent-connections-under-asgi"]
    assert ("['pool']" in findings[0].how) is (version >= (5, 1))


def test_connection_findings_pool_is_fine() -> None:
    assert judge(OPTIONS={"pool": True}, CONN_MAX_AGE=0) == []


def test_connection_findings_pool_without_its_package() -> None:
    assert judge(pool_installed=False, OPTIONS={"pool": True}, CONN_MAX_AGE=0) == [
        "database.pool-package-missing"
    ]


def test_connection_findings_pool_with_persistent_connections() -> None:
    assert judge(OPTIONS={"pool": {"max_size": 4}}, CONN_MAX_AGE=60) == [
        "database.pool-with-persistent-connections"
    ]


def test_connection_findings_pool_on_old_django() -> None:
    assert judge((4, 2), OPTIONS={"pool": True}) == ["database.pool-unsupported"]


def test_database_findings_read_the_alias() -> None:
    from django.db import connection

    findings = database_findings("default")

    # The example keeps connections; Django 5.1 and later could pool them.
    if connection.vendor == "postgresql" and django.VERSION >= (5, 1):
        assert ids(findings) == ["database.pool-available"]
    else:
        assert findings == []


@override_settings(ASGI_APPLICATION="maintenance_dashboard.asgi.application")
def test_database_findings_see_asgi() -> None:
    from django.db import connection

    findings = database_findings("default")

    expected = ["database.persistent-connections-under-asgi"]
    assert ids(findings) == (expected if connection.vendor == "postgresql" else [])


# --- beat -------------------------------------------------------------------


def test_beat_findings_defaults_are_fine() -> None:
    assert beat_findings() == []


@override_settings(
    MAINTENANCE_PERF={
        "BEAT": {
            "check-overdue-maintenance": {"schedule": "30m"},
            "generate-maintenance-events": {"schedule": "*/20 * * * *"},
            "generate-scheduled-maintenance": {"schedule": "1h", "enabled": False},
        }
    }
)
def test_beat_findings_frequent_settings_entries() -> None:
    findings = beat_findings()

    assert ids(findings) == ["beat.frequent-task"] * 2
    assert "check-overdue-maintenance every 30 minutes" in findings[0].title
    assert "generate-maintenance-events every 20 minutes" in findings[1].title


@override_settings(
    CELERY_BEAT_SCHEDULE={
        "overdue": {
            "task": "maintenance_perf.check_overdue_maintenance",
            "schedule": datetime.timedelta(minutes=90),
        },
        "events": {
            "task": "maintenance_perf.generate_maintenance_events",
            "schedule": schedule(datetime.timedelta(minutes=30)),
        },
        "plan": {
            "task": "maintenance_perf.generate_scheduled_maintenance",
            "schedule": 4 * 3600,
        },
        "cleanup": {"task": "sessions.cleanup", "schedule": 60},
        "broken": "not an entry",
    }
)
def test_beat_findings_host_schedule_entries() -> None:
    findings = beat_findings()

    assert [finding.title for finding in findings] == [
        "CELERY_BEAT_SCHEDULE['overdue'] runs check-overdue-maintenance every "
        "1.5 hours on average.",
        "CELERY_BEAT_SCHEDULE['events'] runs generate-maintenance-events every "
        "30 minutes on average.",
    ]


@override_settings(
    MAINTENANCE_PERF={"BEAT": {"check-overdue-maintenance": {"schedule": "1h"}}},
    CELERY_BEAT_SCHEDULE={
        "check-overdue-maintenance": {
            "task": "maintenance_perf.check_overdue_maintenance",
            "schedule": datetime.timedelta(hours=1),
        }
    },
)
def test_beat_findings_report_a_built_schedule_once() -> None:
    assert len(beat_findings()) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2h", datetime.timedelta(hours=2)),
        ("0 */4 * * *", datetime.timedelta(hours=4)),
        ("*/15 8-17 * * 1-5", datetime.timedelta(minutes=36)),
        (schedule(datetime.timedelta(minutes=5)), datetime.timedelta(minutes=5)),
        ("often", None),
    ],
)
def test_average_interval(value: object, expected: datetime.timedelta | None) -> None:
    assert average_interval(value) == expected


# --- indexes ----------------------------------------------------------------


@pytest.mark.django_db
def test_index_findings_every_planned_index_present() -> None:
    assert index_findings() == []


@pytest.mark.django_db
@override_settings(MAINTENANCE_PERF={"INDEXES": {"location": [("name", "code")]}})
def test_index_findings_missing_index() -> None:
    findings = index_findings()

    assert ids(findings) == ["indexes.missing"]
    assert findings[0].title.startswith("1 of 8 planned indexes are missing")
    assert "on core.Location (name, code)" in findings[0].why


@pytest.mark.django_db
def test_index_findings_invalid_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(advice, "database_index_status", lambda *args: "invalid")

    findings = index_findings()

    assert ids(findings) == ["indexes.invalid"]
    assert findings[0].title.startswith("7 planned indexes are INVALID")


@pytest.mark.django_db
def test_index_findings_tables_not_created(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    monkeypatch.setattr(
        connection.introspection, "table_names", lambda *args: ["core_location"]
    )

    findings = index_findings()

    assert ids(findings) == ["indexes.not-checked"]
    assert "equipment_equipment" in findings[0].why


@pytest.mark.django_db
def test_index_findings_database_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> str:
        raise OperationalError("connection refused")

    monkeypatch.setattr(advice, "database_index_status", fail)

    findings = index_findings()

    assert ids(findings) == ["indexes.not-checked"]
    assert findings[0].why == "Could not read its indexes: connection refused."
    assert findings[0].how.startswith("Run manage.py migrate --database default")


@pytest.mark.django_db
def test_index_findings_settings_django_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object) -> str:
        raise ImproperlyConfigured("Pooling doesn't support persistent connections.")

    monkeypatch.setattr(advice, "database_index_status", refuse)

    findings = index_findings()

    assert ids(findings) == ["indexes.not-checked"]
    assert findings[0].why == (
        "Django refuses to connect: Pooling doesn't support persistent connections."
    )
    assert findings[0].how.startswith("Fix DATABASES['default'] as the database")


# --- dashboards -------------------------------------------------------------


def test_dashboard_findings_example_dashboards_are_watched() -> None:
    assert dashboard_findings() == []


def test_served_dashboards_finds_classes_and_decorated_functions() -> None:
    served = dict(served_dashboards("tests.optimize_urls"))

    assert served["tests.optimize_urls.GroupDashboard"] == (
        "equipment",
        "admin.LogEntry",
        "stock.Part",
    )
    assert served["permissions"] == ("sessions.Session",)
    # Decorated here, in a module no URL serves a view from.
    assert "not served" not in served
    assert served["dashboard.views.DashboardView"] == (
        "location",
        "equipment",
        "activity",
        "event",
    )


def test_dashboard_findings_unwatched_and_unknown_models() -> None:
    findings = dashboard_findings("tests.optimize_urls")

    assert [(finding.id, finding.level) for finding in findings] == [
        ("dashboards.unwatched-model", "warning"),
        ("dashboards.unwatched-model", "warning"),
        ("dashboards.unknown-model", "error"),
    ]
    assert "watches sessions.Session" in findings[0].title
    assert findings[1].how == "Add 'admin.LogEntry' to MAINTENANCE_PERF['WATCH']."
    assert "'stock.Part'" in findings[2].title


@override_settings(MAINTENANCE_PERF={"WATCH": ["admin.LogEntry", "sessions.Session"]})
def test_dashboard_findings_watch_setting_covers_them() -> None:
    assert ids(dashboard_findings("tests.optimize_urls")) == [
        "dashboards.unknown-model"
    ]


# --- debug and the whole ----------------------------------------------------


@override_settings(DEBUG=True)
def test_debug_findings_debug_on() -> None:
    assert ids(debug_findings()) == ["debug.on"]


@override_settings(DEBUG=False)
def test_debug_findings_debug_off() -> None:
    assert debug_findings() == []


def test_at_or_above() -> None:
    findings = [
        Finding("a", "info", "", "", ""),
        Finding("b", "warning", "", "", ""),
        Finding("c", "error", "", "", ""),
    ]

    assert ids(at_or_above(findings, "info")) == ["a", "b", "c"]
    assert ids(at_or_above(findings, "warning")) == ["b", "c"]
    assert ids(at_or_above(findings, "error")) == ["c"]


@pytest.mark.django_db
@override_settings(DEBUG=True, CACHES={"default": LOCAL_MEMORY})
def test_collect_on_the_example_settings() -> None:
    assert ids(collect()) == [*ids(database_findings()), "debug.on"]


# --- the command --------------------------------------------------------------


@pytest.mark.django_db
@override_settings(DEBUG=True, CACHES={"default": LOCAL_MEMORY})
def test_optimize_performance_prints_each_finding_with_why_and_how() -> None:
    output = run()

    assert "[warning] debug.on: DEBUG is on.\n  Why: Django then keeps" in output
    assert "\n  How: Set DEBUG = False in production" in output
    assert max(len(line) for line in output.splitlines()) <= 88


@pytest.mark.django_db
@override_settings(DEBUG=False, CACHES={"default": LOCAL_MEMORY})
def test_optimize_performance_summary() -> None:
    from django.db import connection

    output = run()

    # The pool Django 5.1 brought is offered to PostgreSQL projects.
    if connection.vendor == "postgresql" and django.VERSION >= (5, 1):
        expected = "2 findings: 1 warning, 1 info.\n"
    else:
        expected = "1 finding: 1 warning.\n"
    assert output.endswith(expected)


@pytest.mark.django_db
@override_settings(DEBUG=False, CACHES={"default": LOCAL_MEMORY})
def test_optimize_performance_nothing_to_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(advice, "cache_findings", list)
    monkeypatch.setattr(advice, "database_findings", lambda using: [])

    assert run("--fail-level", "info") == "No findings: nothing to change.\n"


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_optimize_performance_json() -> None:
    printed = json.loads(run("--json"))

    debug = [item for item in printed["findings"] if item["id"] == "debug.on"]
    assert debug[0]["level"] == "warning"
    assert set(debug[0]) == {"id", "level", "title", "why", "how"}


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_optimize_performance_fails_at_or_above_the_level() -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("--fail-level", "warning")

    assert exit_info.value.code == 1
    assert "debug.on" in run("--fail-level", "error")


@pytest.mark.django_db(databases=["default", "replica"])
@override_settings(DEBUG=True)
def test_optimize_performance_other_database() -> None:
    assert "debug.on" in run("--database", "replica")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-level", "warn"], r"not 'warn'\. Did you mean 'warning'\?"),
        (["--database", "replika"], r"use one of: default, replica\. Did you mean"),
    ],
)
def test_optimize_performance_bad_options(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
