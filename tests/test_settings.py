from __future__ import annotations

import os

import pytest
from django.core.cache import caches

from maintenance_dashboard.settings import database_from_url


def test_database_from_url_postgres() -> None:
    entry = database_from_url("postgres://maint:s%40cret@db.internal:6543/plant")

    assert entry["ENGINE"] == "django.db.backends.postgresql"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"]) == (
        "plant",
        "maint",
        "s@cret",
    )
    assert (entry["HOST"], entry["PORT"]) == ("db.internal", "6543")


def test_database_from_url_sqlite() -> None:
    entry = database_from_url("sqlite:////var/lib/plant.sqlite3")

    assert entry == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "/var/lib/plant.sqlite3",
    }


def test_database_from_url_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="scheme 'mysql' is not supported"):
        database_from_url("mysql://root@127.0.0.1/plant")


def test_configured_cache_round_trips() -> None:
    """The cache the tests run on (local memory, or Redis) really stores values."""
    cache = caches["default"]
    cache.set("mperf-test-round-trip", {"answer": 42}, 30)

    assert cache.get("mperf-test-round-trip") == {"answer": 42}
    cache.delete("mperf-test-round-trip")
    expected = "RedisCache" if os.environ.get("REDIS_URL") else "LocMemCache"
    assert type(cache).__name__ == expected


def test_environment_runs_the_django_it_names() -> None:
    import django

    expected = os.environ.get("MPERF_EXPECT_DJANGO")
    if expected is None:
        pytest.skip("MPERF_EXPECT_DJANGO is set by tox only")

    assert ".".join(map(str, django.VERSION[:2])) == expected


def test_example_settings_replica_url_enables_the_router(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runpy

    import maintenance_dashboard.settings as example

    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgres://reader@replica:5432/plant")
    loaded = runpy.run_path(example.__file__)

    assert loaded["DATABASES"]["replica"]["HOST"] == "replica"
    assert loaded["MAINTENANCE_PERF"]["READ_REPLICA"] == "replica"
    assert loaded["DATABASE_ROUTERS"] == [
        "maintenance_perf.routers.DashboardReplicaRouter"
    ]
    assert loaded["MIDDLEWARE"][0] == "maintenance_perf.routers.ReadReplicaMiddleware"
