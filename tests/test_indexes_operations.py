"""The concurrent index operations and the example project's index migrations."""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import (
    DatabaseError,
    NotSupportedError,
    OperationalError,
    connection,
    connections,
    models,
)
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from core.models import Location
from maintenance_perf import operations
from maintenance_perf.index_report import postgresql_index_usage
from maintenance_perf.indexes import index_name
from maintenance_perf.operations import (
    ConcurrentAddIndex,
    ConcurrentRemoveIndex,
    add_index,
    postgresql_index_validity,
)
from tests import factories

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.db.backends.base.base import BaseDatabaseWrapper

#: An index no plan holds, so tests can build and drop it freely.
TEST_INDEX = models.Index(
    fields=["name", "address"], name=index_name(Location, ["name", "address"])
)
#: The plan's indexes on equipment, built by equipment's 0002 migration.
EQUIPMENT_INDEXES = {
    "equipmen_location_statu_c478d4": ["location_id", "status"],
    "equipmen_status_674fc1": ["status"],
}


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


@pytest.fixture
def test_index() -> Iterator[models.Index]:
    """Yield the test index, dropped afterwards whatever the test left."""
    yield TEST_INDEX
    with connection.cursor() as cursor:
        cursor.execute(
            f"DROP INDEX IF EXISTS {connection.ops.quote_name(TEST_INDEX.name)}"
        )


@pytest.fixture
def restore_migrations() -> Iterator[None]:
    yield
    call_command("migrate", verbosity=0)


def indexes_on(table: str) -> dict[str, list[str]]:
    """Return each non-unique index of ``table`` with its columns."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: details["columns"]
        for name, details in constraints.items()
        if details["index"] and not details["unique"] and not details["primary_key"]
    }


def apply(operation: Any, *, backwards: bool = False) -> None:
    """Run a core-app operation as a non-atomic migration would."""
    before = MigrationLoader(connection).project_state()
    after = before.clone()
    operation.state_forwards("core", after)
    with connection.schema_editor(atomic=False) as editor:
        if backwards:
            operation.database_backwards("core", editor, after, before)
        else:
            operation.database_forwards("core", editor, before, after)


def open_connection() -> BaseDatabaseWrapper:
    """Open another connection to the test database, usable from any thread."""
    other = connections.create_connection("default")
    other.inc_thread_sharing()
    other.ensure_connection()
    return other


def wait_for(query: str, other: BaseDatabaseWrapper, seconds: float = 10) -> bool:
    """Poll ``query`` on ``other`` until it returns a row."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with other.cursor() as cursor:
            cursor.execute(query)
            if cursor.fetchone():
                return True
        time.sleep(0.02)
    return False


def make_invalid_index(name: str, table: str, column: str) -> None:
    """Leave an INVALID index called ``name``, as a failed build does."""
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        # The column holds duplicates, so the unique build fails half-way.
        cursor.execute(
            f"CREATE UNIQUE INDEX CONCURRENTLY {connection.ops.quote_name(name)} "
            f"ON {table} ({column})"
        )
    assert postgresql_index_validity(connection, name) is False


# --- the operations ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_add_index_builds_once_and_reverses(
    test_index: models.Index,
) -> None:
    operation = ConcurrentAddIndex("Location", test_index)

    apply(operation)
    apply(operation)
    built = indexes_on("core_location")
    apply(operation, backwards=True)
    apply(operation, backwards=True)

    assert built[test_index.name] == ["name", "address"]
    assert test_index.name not in indexes_on("core_location")


@pytest.mark.django_db(transaction=True)
def test_concurrent_remove_index_drops_and_rebuilds(test_index: models.Index) -> None:
    apply(ConcurrentAddIndex("Location", test_index, lock_timeout="5s"))
    operation = ConcurrentRemoveIndex("Location", test_index, lock_timeout="5s")

    apply(operation)
    dropped = test_index.name not in indexes_on("core_location")
    apply(operation, backwards=True)

    assert dropped
    assert indexes_on("core_location")[test_index.name] == ["name", "address"]


def test_concurrent_add_index_in_model_state_keeps_makemigrations_quiet() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    migrated = loader.project_state()
    ConcurrentAddIndex("Location", TEST_INDEX).state_forwards("core", migrated)
    declared = ProjectState.from_apps(apps)
    declared.models["core", "location"].options["indexes"] = [TEST_INDEX]

    changes = MigrationAutodetector(migrated, declared).changes(graph=loader.graph)

    assert migrated.models["core", "location"].options["indexes"] == [TEST_INDEX]
    assert changes == {}


def test_concurrent_add_index_outside_model_state_keeps_makemigrations_quiet() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    migrated = loader.project_state()
    operation = ConcurrentAddIndex("Location", TEST_INDEX, model_state=False)
    operation.state_forwards("core", migrated)

    changes = MigrationAutodetector(migrated, ProjectState.from_apps(apps)).changes(
        graph=loader.graph
    )

    assert migrated.models["core", "location"].options.get("indexes", []) == []
    assert changes == {}


def test_concurrent_remove_index_state() -> None:
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    ConcurrentAddIndex("Location", TEST_INDEX).state_forwards("core", state)
    ConcurrentRemoveIndex("Location", TEST_INDEX, model_state=False).state_forwards(
        "core", state
    )
    kept = list(state.models["core", "location"].options["indexes"])
    ConcurrentRemoveIndex("Location", TEST_INDEX).state_forwards("core", state)

    assert kept == [TEST_INDEX]
    assert state.models["core", "location"].options["indexes"] == []


def test_concurrent_operations_deconstruct_and_describe() -> None:
    plain = ConcurrentAddIndex("Location", TEST_INDEX)
    tuned = ConcurrentRemoveIndex(
        "Location", TEST_INDEX, model_state=False, lock_timeout="3s"
    )

    assert plain.deconstruct() == (
        "ConcurrentAddIndex",
        [],
        {"model_name": "Location", "index": TEST_INDEX},
    )
    assert tuned.deconstruct()[2] == {
        "model_name": "Location",
        "index": TEST_INDEX,
        "model_state": False,
        "lock_timeout": "3s",
    }
    assert plain.describe() == (
        f"Create index {TEST_INDEX.name} on name, address of model Location, "
        "concurrently where the database can"
    )
    assert tuned.describe().startswith(f"Remove index {TEST_INDEX.name} from model")
    assert plain.migration_name_fragment == f"location_{TEST_INDEX.name}"
    assert tuned.migration_name_fragment == f"remove_location_{TEST_INDEX.name}"
    assert plain.references_model("location", "core")
    assert not plain.references_model("equipment", "equipment")


def test_concurrent_add_index_needs_a_named_index() -> None:
    with pytest.raises(ValueError, match="ConcurrentAddIndex needs a named index"):
        ConcurrentAddIndex("Location", models.Index(fields=["name"]))


@pytest.mark.django_db(transaction=True)
def test_concurrent_add_index_respects_database_routers(
    test_index: models.Index, settings: Any
) -> None:
    class NoMigrations:
        def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
            return False

    settings.DATABASE_ROUTERS = [NoMigrations()]

    apply(ConcurrentAddIndex("Location", test_index))
    built = test_index.name in indexes_on("core_location")
    settings.DATABASE_ROUTERS = []
    apply(ConcurrentAddIndex("Location", test_index))
    settings.DATABASE_ROUTERS = [NoMigrations()]
    apply(ConcurrentRemoveIndex("Location", test_index))

    assert not built
    assert test_index.name in indexes_on("core_location")


@pytest.mark.django_db(transaction=True)
def test_sqlmigrate_shows_the_statements() -> None:
    forwards, backwards = io.StringIO(), io.StringIO()
    call_command("sqlmigrate", "equipment", "0002", stdout=forwards)
    call_command("sqlmigrate", "equipment", "0002", "--backwards", stdout=backwards)

    if connection.vendor == "postgresql":
        assert (
            'CREATE INDEX CONCURRENTLY IF NOT EXISTS "equipmen_status_674fc1" ON '
            '"equipment_equipment" ("status");'
        ) in forwards.getvalue()
        assert (
            'DROP INDEX CONCURRENTLY IF EXISTS "equipmen_status_674fc1";'
        ) in backwards.getvalue()
    else:
        assert (
            'CREATE INDEX "equipmen_status_674fc1" ON "equipment_equipment" ("status");'
        ) in forwards.getvalue()
        assert 'DROP INDEX "equipmen_status_674fc1";' in backwards.getvalue()
        assert "CONCURRENTLY" not in forwards.getvalue() + backwards.getvalue()


# --- the example project's migrations ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_example_migration_reverses_and_applies_again(restore_migrations: None) -> None:
    call_command("migrate", "equipment", "0001", verbosity=0)
    reversed_indexes = indexes_on("equipment_equipment")
    call_command("migrate", "equipment", verbosity=0)

    assert not set(EQUIPMENT_INDEXES) & set(reversed_indexes)
    assert {
        name: columns
        for name, columns in indexes_on("equipment_equipment").items()
        if name in EQUIPMENT_INDEXES
    } == EQUIPMENT_INDEXES


@pytest.mark.django_db(transaction=True)
def test_example_migrations_leave_makemigrations_quiet() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_concurrent_add_index_refuses_to_run_in_a_transaction(
    postgresql: None,
) -> None:
    with pytest.raises(NotSupportedError, match="Set atomic = False"):  # noqa: SIM117
        with connection.schema_editor(atomic=False) as editor:
            add_index(editor, Location, TEST_INDEX)


@pytest.mark.django_db(transaction=True)
def test_example_migration_rebuilds_an_invalid_index(
    postgresql: None, restore_migrations: None
) -> None:
    area = factories.location()
    factories.equipment(area, status="operational")
    factories.equipment(area, status="operational")
    call_command("migrate", "equipment", "0001", verbosity=0)
    make_invalid_index("equipmen_status_674fc1", "equipment_equipment", "status")

    call_command("migrate", "equipment", verbosity=0)

    usage = {
        index.name: index
        for index in postgresql_index_usage(connection, {"equipment_equipment"})
    }
    assert usage["equipmen_status_674fc1"].valid
    assert not usage["equipmen_status_674fc1"].unique
    assert usage["equipmen_location_statu_c478d4"].valid


@pytest.mark.django_db
def test_postgresql_index_usage_names_the_foreign_key_of_its_own_index_only(
    postgresql: None,
) -> None:
    usage = postgresql_index_usage(connection, {"equipment_equipment"})

    foreign_keys = {index.name: index.foreign_key for index in usage}
    assert foreign_keys["equipmen_location_statu_c478d4"] is None
    assert list(foreign_keys.values()).count("location_id") == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_add_index_lets_writes_go_on_while_it_builds(
    postgresql: None, test_index: models.Index
) -> None:
    held, other = factories.location(), factories.location()
    blocker, writer = open_connection(), open_connection()
    results: list[str] = []

    def write_during_the_build() -> None:
        try:
            building = wait_for(
                "SELECT 1 FROM pg_stat_progress_create_index "
                "WHERE relid = 'core_location'::regclass",
                writer,
            )
            with writer.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
                cursor.execute(
                    "INSERT INTO core_location (created, modified, name, code, address)"
                    " VALUES (now(), now(), 'Written', 'W-1', '')"
                )
                cursor.execute(
                    "UPDATE core_location SET address = 'Dock 4' WHERE id = %s",
                    [other.pk],
                )
            results.append("written while building" if building else "no build seen")
        finally:
            with blocker.cursor() as cursor:
                cursor.execute("COMMIT")

    try:
        with blocker.cursor() as cursor:
            # An open write makes the build wait, and shows that it lets others write.
            cursor.execute("BEGIN")
            cursor.execute(
                "UPDATE core_location SET name = name WHERE id = %s", [held.pk]
            )
        helper = threading.Thread(target=write_during_the_build)
        helper.start()
        apply(ConcurrentAddIndex("Location", test_index))
        helper.join()
    finally:
        blocker.close()
        writer.close()

    assert results == ["written while building"]
    assert postgresql_index_validity(connection, test_index.name) is True
    assert Location.objects.get(pk=other.pk).address == "Dock 4"
    assert Location.objects.filter(code="W-1").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_add_index_lock_timeout_leaves_no_index_behind(
    postgresql: None, test_index: models.Index
) -> None:
    area = factories.location()
    blocker, watcher = open_connection(), open_connection()

    def release_once_the_cleanup_waits() -> None:
        wait_for(
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'DROP INDEX CONCURRENTLY%%'",
            watcher,
        )
        with blocker.cursor() as cursor:
            cursor.execute("COMMIT")

    try:
        with blocker.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(
                "UPDATE core_location SET name = name WHERE id = %s", [area.pk]
            )
        helper = threading.Thread(target=release_once_the_cleanup_waits)
        helper.start()
        with pytest.raises(OperationalError, match="lock timeout"):
            apply(ConcurrentAddIndex("Location", test_index, lock_timeout="200ms"))
        helper.join()
    finally:
        blocker.close()
        watcher.close()

    assert postgresql_index_validity(connection, test_index.name) is None
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == ("0",)


@pytest.mark.django_db(transaction=True)
def test_concurrent_add_index_failed_cleanup_is_logged(
    postgresql: None,
    test_index: models.Index,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(*args: Any) -> None:
        raise OperationalError("connection lost")

    monkeypatch.setattr(operations, "_drop_concurrently", refuse)

    with (
        caplog.at_level(logging.WARNING, logger="maintenance_perf.operations"),
        pytest.raises(DatabaseError, match="lock_timeout"),
    ):
        apply(ConcurrentAddIndex("Location", test_index, lock_timeout="soon"))

    assert [record.getMessage() for record in caplog.records] == [
        f"Building index {test_index.name} failed; dropping what was built.",
        f"Could not drop the INVALID index {test_index.name}; the next run of "
        "this migration drops it and builds it again.",
    ]


@pytest.mark.django_db(transaction=True)
def test_index_report_on_postgresql(postgresql: None, test_index: models.Index) -> None:
    area = factories.location("Plant")
    factories.location("Plant", parent=area)
    make_invalid_index("location_name_unique", "core_location", "name")
    apply(ConcurrentAddIndex("Location", test_index))
    stdout = io.StringIO()

    try:
        call_command("maintenance_perf_index_report", stdout=stdout)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX location_name_unique")

    report = stdout.getvalue()
    never_scanned = report.split(" never scanned (")[1]
    assert report.startswith("Index usage in database 'default' (PostgreSQL). ")
    assert "1 INVALID, left by a concurrent build that failed" in report
    assert "\n  core_location.location_name_unique\n" in report
    assert f"  core_location.{test_index.name} (" in never_scanned
    assert "core_location_pkey" not in never_scanned
    assert "core_location_code_key" not in never_scanned
    assert "core_location_parent_id" not in never_scanned
    assert "Index plan: 7 of 7 planned indexes present and valid." in report
