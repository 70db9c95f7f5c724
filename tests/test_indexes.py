"""The index plan, its names, its checks, the generator and the report command."""

from __future__ import annotations

import datetime
import io
import shutil
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.db.models import Q
from django.db.models.functions import Upper
from django.test import override_settings
from django.test.utils import isolate_apps
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models import Location
from equipment.models import Equipment
from maintenance.models import MaintenanceActivity
from maintenance_perf import indexes
from maintenance_perf.checks import check_settings
from maintenance_perf.index_report import IndexUsage
from maintenance_perf.indexes import (
    MAX_NAME_LENGTH,
    build_plan,
    index_migration,
    index_name,
    pending_indexes,
    written_indexes,
)
from maintenance_perf.management.commands.maintenance_perf_index_report import (
    age_sentence,
    note,
    size,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.core.checks import CheckMessage

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_MIGRATION = "0002_maintenance_perf_indexes.py"

#: The recommended plan on the example project: (model label, fields).
RECOMMENDED = [
    ("equipment.Equipment", ("location", "status")),
    ("equipment.Equipment", ("status",)),
    ("maintenance.MaintenanceActivity", ("equipment", "status")),
    ("maintenance.MaintenanceActivity", ("scheduled_start", "status")),
    ("maintenance.MaintenanceActivity", ("status", "scheduled_end")),
    ("maintenance.MaintenanceSchedule", ("is_active", "next_due_date")),
    ("events.CalendarEvent", ("event_date", "is_completed")),
]


def planned(app_labels: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...]]]:
    return [
        (entry.model._meta.label, tuple(entry.index.fields))
        for entry in build_plan(app_labels).indexes
    ]


def ids(messages: list[CheckMessage]) -> list[str | None]:
    """Return the ids of the index plan's own messages (E020-E029, W020-W029)."""
    return [
        message.id
        for message in messages
        if message.id and message.id[len("maintenance_perf.") + 1 :].startswith("02")
    ]


@pytest.fixture
def model_meta() -> Iterator[None]:
    """Put every model's indexes back as they were, whatever the test changed."""
    saved = [
        (model, list(model._meta.indexes), dict(model._meta.original_attrs))
        for model in django_apps.get_models()
    ]
    installed = {model: list(added) for model, added in indexes._installed.items()}
    yield
    for model, declared, attributes in saved:
        model._meta.indexes = declared
        model._meta.original_attrs = attributes
    indexes._installed.clear()
    indexes._installed.update(installed)


def plan_messages() -> list[CheckMessage]:
    return [message for message in check_settings() if ids([message])]


def drop_within_the_test(name: str) -> None:
    """Drop an index inside the test's transaction, which puts it back."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


# --- names ------------------------------------------------------------------


def test_index_name_is_deterministic_and_short() -> None:
    name = index_name(MaintenanceActivity, ("scheduled_start", "status"))

    assert name == index_name(MaintenanceActivity, ("scheduled_start", "status"))
    assert name.startswith("activity_schedule_statu_")
    assert len(name) <= MAX_NAME_LENGTH


def test_index_name_tells_column_order_and_direction_apart() -> None:
    names = {
        index_name(MaintenanceActivity, fields)
        for fields in [
            ("status", "scheduled_end"),
            ("scheduled_end", "status"),
            ("status", "-scheduled_end"),
        ]
    }

    assert len(names) == 3


def test_index_name_never_starts_with_a_digit() -> None:
    with isolate_apps("maintenance_perf"):
        model = type(
            "Maintenance_perf2",
            (models.Model,),
            {
                "when": models.DateField(),
                "__module__": __name__,
                "Meta": type("Meta", (), {"app_label": "maintenance_perf"}),
            },
        )

        assert index_name(model, ["when"]).startswith("i2_when_")


field_names = st.from_regex(
    r"[a-z][a-z0-9]{0,25}(_[a-z0-9]{1,20}){0,2}", fullmatch=True
).filter(lambda name: not hasattr(models.Model, name) and name not in {"id", "pk"})


@pytest.mark.django_db
@settings(max_examples=40, deadline=None)
@given(
    model_name=st.from_regex(r"[A-Z][A-Za-z0-9]{0,60}", fullmatch=True),
    fields=st.lists(field_names, min_size=1, max_size=3, unique=True),
    table=st.one_of(st.none(), st.from_regex(r"[0-9_a-z]{1,60}", fullmatch=True)),
)
def test_index_name_long_model_and_field_names_pass_djangos_checks(
    model_name: str, fields: list[str], table: str | None
) -> None:
    with isolate_apps("maintenance_perf"):
        meta: dict[str, Any] = {"app_label": "maintenance_perf"}
        if table:
            meta["db_table"] = table
        attributes: dict[str, Any] = {
            name: models.IntegerField(db_column=f"{name}_column") for name in fields
        }
        model = type(
            model_name,
            (models.Model,),
            {**attributes, "__module__": __name__, "Meta": type("Meta", (), meta)},
        )
        name = index_name(model, fields)
        model._meta.indexes = [models.Index(fields=fields, name=name)]

        errors = model.check(databases=["default"])

    assert errors == []
    assert len(name) <= MAX_NAME_LENGTH
    assert name[0].isalpha()


# --- the plan ---------------------------------------------------------------


def test_build_plan_recommends_the_standard_indexes() -> None:
    assert planned() == RECOMMENDED
    assert {entry.source for entry in build_plan().indexes} == {"recommended"}


def test_build_plan_never_duplicates_a_foreign_key_index() -> None:
    foreign_keys = {
        (model._meta.label, (field.name,))
        for model in (Equipment, MaintenanceActivity)
        for field in model._meta.concrete_fields
        if field.is_relation
    }

    assert foreign_keys.isdisjoint(planned())


@override_settings(
    MAINTENANCE_PERF={
        "INDEXES": {
            "equipment": [("location",), ["status"], ("code",)],
            "activity": [("equipment_id", "-scheduled_end")],
        }
    }
)
def test_build_plan_leaves_out_entries_an_existing_index_serves() -> None:
    plan = build_plan()

    assert ids(plan.messages) == ["maintenance_perf.W020"] * 3
    assert "Django indexes the foreign key location" in plan.messages[0].msg
    assert "the plan already has it" in plan.messages[1].msg
    assert "code is unique" in plan.messages[2].msg
    assert planned()[-1] == (
        "maintenance.MaintenanceActivity",
        ("equipment", "-scheduled_end"),
    )


@override_settings(
    MAINTENANCE_PERF={
        "INDEXES": {"core.Location": [("name",), ("code", "name"), ("address",)]}
    }
)
def test_build_plan_leaves_out_entries_declared_indexes_serve(
    model_meta: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = Location._meta
    monkeypatch.setattr(meta, "unique_together", (("name", "parent"),))
    monkeypatch.setattr(
        meta,
        "constraints",
        [
            models.UniqueConstraint(fields=["code", "name"], name="code_name"),
            models.UniqueConstraint(
                fields=["address"], name="open_address", condition=Q(parent=None)
            ),
        ],
    )
    meta.indexes = [
        models.Index(fields=["-address", "name"], name="address_name"),
        models.Index(fields=["address"], name="site_address", condition=Q(parent=None)),
    ]

    messages = build_plan().messages

    assert [message.msg.split(": ")[1] for message in messages] == [
        "unique_together ('name', 'parent') covers it.",
        "the constraint code_name covers it.",
        "the model declares the index address_name.",
    ]


@override_settings(
    MAINTENANCE_PERF={
        "INDEXES": {
            "core.Location": [
                ("parent", "name"),
                models.Index(fields=["address"]),
                models.Index(
                    fields=["name"], name="location_named", condition=Q(parent=None)
                ),
                models.Index(Upper("name"), name="location_upper_name"),
            ]
        }
    }
)
def test_build_plan_takes_settings_entries_by_model_label() -> None:
    plan = build_plan()
    extra = [entry for entry in plan.indexes if entry.source == "settings"]

    assert plan.messages == []
    assert [tuple(entry.index.fields) for entry in extra] == [
        ("parent", "name"),
        ("address",),
        ("name",),
        (),
    ]
    assert extra[1].index.name == index_name(Location, ("address",))
    assert extra[2].index.name == "location_named"
    assert extra[2].index.condition == Q(parent=None)
    assert extra[3].index.name == "location_upper_name"


@override_settings(MAINTENANCE_PERF={"MODELS": {"event": None, "schedule": None}})
def test_build_plan_skips_roles_mapped_to_none() -> None:
    labels = {label for label, _ in planned()}

    assert labels == {"equipment.Equipment", "maintenance.MaintenanceActivity"}


def test_build_plan_takes_meta_indexes_of_the_apps_asked_for(model_meta: None) -> None:
    declared = models.Index(fields=["name", "address"], name="location_name_addr")
    Location._meta.indexes = [declared]

    plan = build_plan(["core"])
    pending = pending_indexes(plan, MigrationLoader(None, ignore_no_migrations=True))

    assert [(entry.index, entry.source) for entry in pending] == [(declared, "model")]
    assert "ConcurrentAddIndex(" in index_migration("core", pending, _loader())[1]


# --- checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("indexes", "expected", "text"),
    [
        (["status"], "E020", "must be a dict of model role or label"),
        ({"machine": [("status",)]}, "E021", "neither a model role nor"),
        ({"core.Nowhere": [("name",)]}, "E021", "neither a model role nor"),
        ({"equipment": ("status",)}, "E022", "holds 'status', which is neither"),
        ({"equipment": "status"}, "E022", "must be a list of index entries"),
        ({"equipment": [42]}, "E022", "neither a list of field names"),
        ({"equipment": [("",)]}, "E022", "neither a list of field names"),
        ({"equipment": [()]}, "E022", "neither a list of field names"),
        ({"equipment": [("colour",)]}, "E023", "'colour', which"),
        ({"equipment": [("activities",)]}, "E023", "'activities', which"),
        (
            {"equipment": [models.Index(fields=["name"], name="x" * 31)]},
            "E024",
            "is longer than 30 characters",
        ),
        (
            {"equipment": [models.Index(fields=["name"], name="_name")]},
            "E024",
            "does not start with a letter",
        ),
    ],
)
def test_check_settings_bad_index_entries(
    indexes: Any, expected: str, text: str
) -> None:
    with override_settings(MAINTENANCE_PERF={"INDEXES": indexes}):
        messages = plan_messages()

    assert ids(messages) == [f"maintenance_perf.{expected}"]
    assert text in messages[0].msg


@override_settings(
    MAINTENANCE_PERF={"MODELS": {"event": None}, "INDEXES": {"event": [("title",)]}}
)
def test_check_settings_indexes_for_a_role_mapped_to_none() -> None:
    messages = plan_messages()

    assert ids(messages) == ["maintenance_perf.E021"]
    assert "which MODELS maps to None" in messages[0].msg


@override_settings(MAINTENANCE_PERF={"MODELS": {"event": "core.Location"}})
def test_check_settings_recommended_entry_on_a_model_without_the_field() -> None:
    messages = plan_messages()

    assert ids(messages) == ["maintenance_perf.W021"]
    assert "has no field 'event_date', 'is_completed'" in messages[0].msg
    assert ("core.Location", ("event_date", "is_completed")) not in planned()


@override_settings(
    MAINTENANCE_PERF={
        "MODELS": {"equipment": "equipment.Machine"},
        "INDEXES": {"equipment": [("name",)]},
    }
)
def test_check_settings_wrong_model_label_is_reported_once() -> None:
    messages = check_settings()

    assert "maintenance_perf.E007" in [message.id for message in messages]
    assert ids(messages) == []


# --- the generator ----------------------------------------------------------


def _loader() -> MigrationLoader:
    return MigrationLoader(None, ignore_no_migrations=True)


@pytest.fixture
def fresh_migrations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Path]]:
    """Give each example app a migrations package holding only 0001_initial."""
    modules = {}
    folders = {}
    for app_label in ("equipment", "maintenance", "events"):
        package = f"fresh_{app_label}_{uuid.uuid4().hex}"
        folder = tmp_path / package
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        shutil.copy(
            REPO / "example_project" / app_label / "migrations" / "0001_initial.py",
            folder,
        )
        modules[app_label] = package
        folders[app_label] = folder
    monkeypatch.syspath_prepend(str(tmp_path))
    with override_settings(MIGRATION_MODULES=modules):
        yield folders
    for package in modules.values():
        sys.modules.pop(package, None)
        sys.modules.pop(f"{package}.0001_initial", None)


def test_generator_writes_the_example_projects_migrations_exactly(
    fresh_migrations: dict[str, Path],
) -> None:
    stdout, _ = run("maintenance_perf_index_migrations")

    for app_label, folder in fresh_migrations.items():
        written = (folder / EXAMPLE_MIGRATION).read_text()
        committed = REPO / "example_project" / app_label / "migrations"
        assert written == (committed / EXAMPLE_MIGRATION).read_text()
    assert "maintenance_perf_indexes.py: 4 indexes." in stdout
    assert "maintenance_perf_indexes.py: 1 index." in stdout


def test_generator_same_plan_gives_the_same_file(
    fresh_migrations: dict[str, Path],
) -> None:
    plan = build_plan()
    first = index_migration("maintenance", plan.for_app("maintenance"), _loader())
    second = index_migration(
        "maintenance", build_plan().for_app("maintenance"), _loader()
    )

    assert first == second
    assert "atomic = False" in first[1]
    assert first[1].count("ConcurrentAddIndex(") == 4
    assert "model_state" not in first[1]


def test_generator_rerun_writes_nothing(fresh_migrations: dict[str, Path]) -> None:
    run("maintenance_perf_index_migrations")
    stdout, _ = run("maintenance_perf_index_migrations")

    assert stdout == "No changes: every planned index has a migration.\n"
    assert sorted(path.name for path in fresh_migrations["events"].glob("*.py")) == [
        "0001_initial.py",
        EXAMPLE_MIGRATION,
        "__init__.py",
    ]


def test_generator_dry_run_prints_and_writes_nothing(
    fresh_migrations: dict[str, Path],
) -> None:
    stdout, _ = run("maintenance_perf_index_migrations", "--dry-run", "events")

    assert stdout.startswith(f"--- {fresh_migrations['events'] / EXAMPLE_MIGRATION}")
    assert stdout.count("--- ") == 1
    assert "name='calendar_eventdat_iscom_1247f1'" in stdout
    assert not (fresh_migrations["events"] / EXAMPLE_MIGRATION).exists()


@override_settings(MAINTENANCE_PERF={"INDEXES": {"equipment": [("location",)]}})
def test_generator_reports_left_out_entries(fresh_migrations: dict[str, Path]) -> None:
    _, stderr = run("maintenance_perf_index_migrations", "--dry-run")

    assert stderr.startswith("maintenance_perf.W020: The settings index plan entry")


def test_generator_unknown_app() -> None:
    with pytest.raises(CommandError, match="No installed app with label 'spares'"):
        run("maintenance_perf_index_migrations", "spares")


def test_generator_app_with_two_leaf_migrations(
    fresh_migrations: dict[str, Path],
) -> None:
    folder = fresh_migrations["events"]
    for name in ("0002_a", "0002_b"):
        (folder / f"{name}.py").write_text(
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            "    dependencies = [('events', '0001_initial')]\n"
        )

    with pytest.raises(
        CommandError, match="has 2 leaf migrations; run makemigrations --merge"
    ):
        run("maintenance_perf_index_migrations", "events")


def test_written_indexes_follows_every_kind_of_index_operation(
    fresh_migrations: dict[str, Path],
) -> None:
    (fresh_migrations["events"] / "0002_indexes.py").write_text(
        """from django.db import migrations, models

import maintenance_perf.operations as operations

PLANNED = models.Index(
    fields=["event_date", "is_completed"], name="calendar_eventdat_iscom_1247f1"
)
DECLARED = models.Index(fields=["title"], name="event_title")


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("events", "0001_initial")]
    operations = [
        operations.ConcurrentAddIndex("CalendarEvent", PLANNED, model_state=False),
        migrations.AddIndex("CalendarEvent", DECLARED),
        operations.ConcurrentAddIndex(
            "CalendarEvent", models.Index(fields=["event_type"], name="event_type")
        ),
        operations.ConcurrentRemoveIndex("CalendarEvent", PLANNED, model_state=False),
        migrations.CreateModel(
            "Reminder",
            [("id", models.AutoField(primary_key=True)), ("due", models.DateField())],
            options={"indexes": [models.Index(fields=["due"], name="reminder_due")]},
        ),
        migrations.RunSQL("SELECT 1", migrations.RunSQL.noop),
    ]
"""
    )

    written = written_indexes(_loader(), "events")

    assert written == {
        ("calendarevent", "event_title"): ("events", "0002_indexes"),
        ("calendarevent", "event_type"): ("events", "0002_indexes"),
        ("reminder", "reminder_due"): ("events", "0002_indexes"),
    }
    pending = pending_indexes(build_plan(), _loader())
    assert [entry.index.name for entry in pending if entry.app_label == "events"] == [
        "calendar_eventdat_iscom_1247f1"
    ]


def test_build_plan_ignores_an_unknown_app_label() -> None:
    assert planned(("spares",)) == RECOMMENDED


def test_index_migration_app_without_migrations() -> None:
    assert written_indexes(_loader(), "maintenance_perf") == {}
    with pytest.raises(ValueError, match="'maintenance_perf' has no migrations"):
        index_migration("maintenance_perf", [], _loader())


def test_generator_refuses_dry_run_with_check() -> None:
    with pytest.raises(
        CommandError, match=r"^--dry-run and --check do not go together"
    ):
        run("maintenance_perf_index_migrations", "--dry-run", "--check")


@pytest.mark.django_db
def test_generator_check_passes_when_the_plan_is_applied() -> None:
    stdout, _ = run("maintenance_perf_index_migrations", "--check")

    assert stdout == (
        "The index plan is applied: 7 indexes, all valid in database 'default'.\n"
    )


@pytest.mark.django_db
@override_settings(MAINTENANCE_PERF={"INDEXES": {"activity": [("priority",)]}})
def test_generator_check_fails_when_an_entry_has_no_migration() -> None:
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("maintenance_perf_index_migrations", "--check", stderr=stderr)

    assert exit_info.value.code == 1

    name = index_name(MaintenanceActivity, ("priority",))
    assert stderr.getvalue() == (
        f"Index {name} on maintenance.MaintenanceActivity (priority) has no "
        "migration yet; run manage.py maintenance_perf_index_migrations.\n"
    )


@pytest.mark.django_db
def test_generator_check_fails_when_an_applied_index_is_missing() -> None:
    drop_within_the_test("equipmen_status_674fc1")

    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("maintenance_perf_index_migrations", "--check", stderr=stderr)

    assert stderr.getvalue() == (
        "Index equipmen_status_674fc1 on equipment.Equipment (status) is missing "
        "although migration equipment.0002_maintenance_perf_indexes is applied; "
        "a later migration may have rebuilt the table without it.\n"
    )


@pytest.mark.django_db
def test_generator_check_fails_when_the_migration_is_not_applied() -> None:
    from django.db.migrations.recorder import MigrationRecorder

    drop_within_the_test("calendar_eventdat_iscom_1247f1")
    MigrationRecorder(connection).record_unapplied(
        "events", "0002_maintenance_perf_indexes"
    )

    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("maintenance_perf_index_migrations", "--check", stderr=stderr)

    assert (
        "is not built: migration events.0002_maintenance_perf_indexes is not applied"
        in stderr.getvalue()
    )


# --- the report -------------------------------------------------------------


@pytest.mark.django_db
def test_index_report_lists_the_planned_indexes() -> None:
    stdout, _ = run("maintenance_perf_index_report")

    assert "Index plan: 7 of 7 planned indexes present and valid." in stdout
    assert "activity_status_schedul_880ca1" in stdout
    assert "auth_user" not in stdout


@pytest.mark.django_db
def test_index_report_all_tables() -> None:
    stdout, _ = run("maintenance_perf_index_report", "--all")

    assert "auth_user" in stdout


@pytest.mark.django_db
def test_index_report_names_missing_planned_indexes() -> None:
    drop_within_the_test("equipmen_status_674fc1")

    stdout, _ = run("maintenance_perf_index_report")

    assert "Index plan: 6 of 7 planned indexes present and valid." in stdout
    assert (
        "  missing: equipmen_status_674fc1 on equipment.Equipment (status)\n"
    ) in stdout


def usage(**changes: Any) -> IndexUsage:
    values: dict[str, Any] = {
        "table": "equipment_equipment",
        "name": "equipmen_status_674fc1",
        "scans": 0,
        "tuples_read": 0,
        "size_bytes": 8192,
        "valid": True,
        "primary_key": False,
        "unique": False,
        "constraint": None,
        "foreign_key": None,
    }
    return IndexUsage(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "unused", "text"),
    [
        ({}, True, "never scanned"),
        ({"scans": 3}, False, ""),
        ({"primary_key": True}, False, "primary key"),
        ({"unique": True}, False, "unique"),
        ({"constraint": "no_overlap"}, False, "constraint no_overlap"),
        ({"foreign_key": "location_id"}, False, "foreign key location_id"),
        ({"valid": False}, False, "INVALID"),
    ],
)
def test_index_usage_never_calls_a_key_or_constraint_index_unused(
    changes: dict[str, Any], unused: bool, text: str
) -> None:
    index = usage(**changes)

    assert index.unused is unused
    assert note(index) == text


@pytest.mark.parametrize(
    ("size_bytes", "text"),
    [(512, "512 B"), (16384, "16.0 kB"), (3 << 20, "3.0 MB"), (5 << 30, "5.0 GB")],
)
def test_size_is_written_for_people(size_bytes: int, text: str) -> None:
    assert size(size_bytes) == text


def test_age_sentence_says_how_old_the_statistics_are() -> None:
    started = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
    reset = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=9)

    assert age_sentence(None, started) == (
        "Its statistics were never reset, so counts go back to its creation or "
        "to the last crash; the server has run since 2026-01-02 03:04 UTC."
    )
    assert age_sentence(reset, started).startswith(
        "Counts cover 9 days, since the statistics were reset on "
    )


# --- the plan on the models -------------------------------------------------


def test_install_plan_puts_the_planned_indexes_on_the_models() -> None:
    from django.db.migrations.state import ModelState

    names = [index.name for index in Equipment._meta.indexes]
    state = ModelState.from_model(Equipment)

    assert names == ["equipmen_location_statu_c478d4", "equipmen_status_674fc1"]
    assert [index.name for index in state.options["indexes"]] == names


def test_install_plan_follows_the_setting() -> None:
    from django.db.migrations.state import ModelState

    from events.models import CalendarEvent

    extra = {"MODELS": {"event": None}, "INDEXES": {"core.Location": [("name",)]}}
    with override_settings(MAINTENANCE_PERF=extra):
        during = (list(CalendarEvent._meta.indexes), list(Location._meta.indexes))
        location_state = ModelState.from_model(Location)

    assert during[0] == []
    assert [index.fields for index in during[1]] == [["name"]]
    assert location_state.options["indexes"] == during[1]
    assert Location._meta.indexes == []
    assert ModelState.from_model(Location).options["indexes"] == []
    assert "indexes" not in Location._meta.original_attrs
    assert len(CalendarEvent._meta.indexes) == 1


@override_settings(MAINTENANCE_PERF={"INDEXES": {"activity": [("priority",)]}})
def test_check_settings_warns_about_planned_indexes_without_migration() -> None:
    messages = plan_messages()

    assert ids(messages) == ["maintenance_perf.W022"]
    assert messages[0].msg == (
        "1 planned index has no migration yet: "
        f"{index_name(MaintenanceActivity, ('priority',))}."
    )
    assert "before makemigrations" in messages[0].hint


@override_settings(
    MAINTENANCE_PERF={"INDEXES": {"activity": [("priority",), ("title",)]}}
)
def test_check_settings_leaves_a_broken_migration_graph_to_django(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db.migrations.exceptions import NodeNotFoundError

    from maintenance_perf import indexes

    assert plan_messages()[0].msg.startswith("2 planned indexes have no migration")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise NodeNotFoundError("missing parent", ("events", "0009_gone"))

    monkeypatch.setattr(indexes, "MigrationLoader", broken)

    assert plan_messages() == []


def test_install_plan_keeps_a_models_own_indexes(model_meta: None) -> None:
    own = models.Index(fields=["name"], name="equipment_name")
    Equipment._meta.indexes = [own]
    Equipment._meta.original_attrs["indexes"] = [own]

    indexes.install_plan()

    assert [index.name for index in Equipment._meta.indexes] == [
        "equipment_name",
        "equipmen_location_statu_c478d4",
        "equipmen_status_674fc1",
    ]
    assert Equipment._meta.original_attrs["indexes"] == [own]


@pytest.mark.parametrize(
    "command", ["maintenance_perf_index_migrations", "maintenance_perf_index_report"]
)
def test_index_commands_reject_an_unknown_database(command: str) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="invalid choice: 'nope'"):
        call_command(command, "--database", "nope")
