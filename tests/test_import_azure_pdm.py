from __future__ import annotations

import csv
import datetime
import io
import shutil
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.db import DatabaseError, connection
from django.db.models import Count, F, Max

from core.models import Location
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity, MaintenanceSchedule
from maintenance_perf.cache import get_or_compute

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pytest_django import DjangoDbBlocker
    from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

TODAY = datetime.date(2025, 3, 14)
UTC = datetime.timezone.utc
SHIFT = TODAY - datetime.date(2016, 1, 1)
MODELS = (CalendarEvent, MaintenanceActivity, MaintenanceSchedule, Equipment, Location)
FILES = ("machines.csv", "maint.csv", "failures.csv", "errors.csv")

EXPECTED_COUNTS = {
    "core.Location": 60,
    "equipment.Equipment": 1000,
    "maintenance.MaintenanceSchedule": 4000,
    "maintenance.MaintenanceActivity": 36778,
    "events.CalendarEvent": 15967,
}


def table_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in MODELS}


def clear_tables() -> None:
    # TRUNCATE on PostgreSQL: deleting rows there queues a foreign key check per
    # row, which the test's teardown then runs.
    tables = [model._meta.db_table for model in MODELS]
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables))


def run_import(folder: Path, *args: str) -> str:
    output = io.StringIO()
    call_command(
        "import_azure_pdm",
        str(folder),
        "--no-progress",
        *args,
        stdout=output,
        stderr=io.StringIO(),
    )
    return output.getvalue()


def shifted(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC) + SHIFT


def read_csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def imported(
    django_db_setup: None, django_db_blocker: DjangoDbBlocker, azure_pdm_dir: Path
) -> Iterator[str]:
    """Import the real data set once for this module; return the command's output.

    Tests that use it also use ``db``: pytest keeps tests that share their
    database fixtures together, and a test without ``db`` could be moved out
    of the group, which would import the data set a second time.
    """
    with django_db_blocker.unblock():
        output = run_import(azure_pdm_dir, "--today", TODAY.isoformat())
    yield output
    with django_db_blocker.unblock():
        clear_tables()


@pytest.fixture
def empty_database(db: None) -> None:
    """Tables without the module's import; the test's rollback brings it back."""
    clear_tables()


@pytest.fixture
def copy_dir(tmp_path: Path, azure_pdm_dir: Path) -> Path:
    for name in FILES:
        shutil.copy(azure_pdm_dir / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def subset_dir(tmp_path: Path, azure_pdm_dir: Path) -> Path:
    """The data set cut down to its first 20 machines (area S01-A)."""
    for name in FILES:
        with (azure_pdm_dir / name).open(newline="") as source:
            rows = list(csv.reader(source))
        kept = [rows[0]] + [
            row for row in rows[1:] if int(row[rows[0].index("machineID")]) <= 20
        ]
        with (tmp_path / name).open("w", newline="") as target:
            csv.writer(target).writerows(kept)
    return tmp_path


def replace_line(folder: Path, name: str, line: int, text: str) -> None:
    path = folder / name
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = text + "\n"
    path.write_text("".join(lines))


@pytest.mark.usefixtures("imported", "db")
def test_import_creates_every_table_row() -> None:
    assert table_counts() == EXPECTED_COUNTS


@pytest.mark.usefixtures("imported", "db")
def test_import_counts_match_the_files(azure_pdm_dir: Path) -> None:
    maint = {
        (row["datetime"], row["machineID"], row["comp"])
        for row in read_csv(azure_pdm_dir, "maint.csv")
    }
    failures = {
        (row["datetime"], row["machineID"], row["failure"])
        for row in read_csv(azure_pdm_dir, "failures.csv")
    }
    errors = read_csv(azure_pdm_dir, "errors.csv")
    replaced = Counter((machine, comp) for _, machine, comp in maint)
    completed = MaintenanceActivity.objects.filter(status="completed")

    assert completed.count() == len(maint | failures) == 32778
    assert completed.filter(activity_type="corrective").count() == len(failures) == 6726
    assert completed.filter(activity_type="preventive").count() == len(maint - failures)
    assert MaintenanceSchedule.objects.count() == sum(
        1 for times in replaced.values() if times >= 2
    )
    assert CalendarEvent.objects.filter(event_type="error").count() == len(errors)
    assert CalendarEvent.objects.filter(event_type="error").count() == 11967


@pytest.mark.usefixtures("db")
def test_import_output_reports_created_rows(imported: str) -> None:
    assert "Locations: 60 created, 0 skipped" in imported
    assert "Equipment: 1,000 created, 0 skipped" in imported
    assert "Maintenance schedules: 4,000 created, 0 skipped" in imported
    assert "Maintenance activities: 36,778 created, 0 skipped" in imported
    assert "Calendar events: 15,967 created, 0 skipped" in imported
    assert "53 pieces of equipment in maintenance, 1,350 of 4,000 planned" in imported


@pytest.mark.usefixtures("imported", "db")
def test_import_places_twenty_machines_in_each_area() -> None:
    sites = Location.objects.filter(parent__isnull=True)
    per_area = Counter(Equipment.objects.values_list("location__code", flat=True))

    assert sorted(sites.values_list("name", flat=True)) == [
        f"Site {number:02d}" for number in range(1, 11)
    ]
    assert all(site.areas.count() == 5 for site in sites)
    assert len(per_area) == 50
    assert set(per_area.values()) == {20}
    assert Equipment.objects.get(code="AZ-0020").location.code == "S01-A"
    assert Equipment.objects.get(code="AZ-0021").location.code == "S01-B"
    assert Equipment.objects.get(code="AZ-1000").location.name == "Site 10 / Area E"


@pytest.mark.usefixtures("imported", "db")
def test_import_maps_a_machine_to_equipment() -> None:
    machine = Equipment.objects.get(code="AZ-0001")

    assert machine.name == "Machine 0001"
    assert machine.category == "model2"
    assert machine.commissioned_on == TODAY.replace(year=TODAY.year - 18)
    assert machine.location.parent.code == "S01"


@pytest.mark.usefixtures("imported", "db")
def test_import_marks_equipment_with_a_recent_unfixed_error_in_maintenance() -> None:
    now = shifted("2016-01-01 06:00:00")
    in_maintenance = Equipment.objects.filter(status="in_maintenance")

    assert in_maintenance.count() == 53
    assert Equipment.objects.filter(status="operational").count() == 947
    for machine in in_maintenance:
        latest_error = machine.calendar_events.filter(event_type="error").latest(
            "event_date"
        )
        assert latest_error.event_date >= now - datetime.timedelta(days=7)
        assert not latest_error.is_completed


@pytest.mark.usefixtures("imported", "db")
def test_import_turns_replacements_and_failures_into_activities() -> None:
    replacement = MaintenanceActivity.objects.get(
        external_ref="azure-pdm:maint:1:comp4:2014-07-01T06"
    )
    repair = MaintenanceActivity.objects.get(
        external_ref="azure-pdm:maint:1:comp3:2015-02-04T06"
    )
    unmatched_failure = MaintenanceActivity.objects.get(
        external_ref="azure-pdm:failure:2:comp2:2015-01-02T03"
    )

    assert replacement.title == "Replace comp4"
    assert replacement.activity_type == "preventive"
    assert replacement.priority == MaintenanceActivity.PRIORITY.medium
    assert replacement.status == "completed"
    assert replacement.scheduled_start == shifted("2014-07-01 06:00:00")
    assert replacement.actual_end == shifted("2014-07-01 08:00:00")
    assert repair.title == "Repair comp3 after failure"
    assert repair.activity_type == "corrective"
    assert repair.priority == MaintenanceActivity.PRIORITY.high
    assert repair.scheduled_end == shifted("2015-02-04 12:00:00")
    assert unmatched_failure.title == "Repair comp2 after failure"
    assert unmatched_failure.scheduled_start == shifted("2015-01-02 03:00:00")


@pytest.mark.usefixtures("imported", "db")
def test_import_newest_activity_falls_on_today() -> None:
    newest = MaintenanceActivity.objects.filter(status="completed").aggregate(
        Max("scheduled_start")
    )["scheduled_start__max"]
    newest_error = CalendarEvent.objects.filter(event_type="error").aggregate(
        Max("event_date")
    )["event_date__max"]

    assert newest == datetime.datetime.combine(TODAY, datetime.time(6), UTC)
    assert newest_error == newest


@pytest.mark.usefixtures("imported", "db")
def test_import_infers_schedules_from_the_replacement_cadence() -> None:
    schedule = MaintenanceSchedule.objects.get(
        external_ref="azure-pdm:schedule:1:comp1"
    )
    planned = schedule.activities.get()
    frequencies = set(
        MaintenanceSchedule.objects.values_list("frequency_days", flat=True)
    )

    # Machine 1 replaced comp1 after 113, 15, 60, 15, 15 and 210 days, last on
    # 2015-11-16: a median of 37.5 days, which rounds up to 45.
    assert schedule.title == "Replace comp1 on Machine 0001"
    assert schedule.frequency_days == 45
    # The planned activity covers 2015-12-31; the next is a cycle later.
    assert schedule.next_due_date == datetime.date(2016, 2, 14) + SHIFT
    assert planned.scheduled_start == shifted("2015-12-31 06:00:00")
    assert planned.scheduled_end == shifted("2015-12-31 08:00:00")
    assert planned.status == "overdue"
    assert all(days % 15 == 0 and days >= 15 for days in frequencies)


@pytest.mark.usefixtures("imported", "db")
def test_import_plans_the_next_activity_of_every_schedule() -> None:
    now = shifted("2016-01-01 06:00:00")
    planned = MaintenanceActivity.objects.filter(schedule__isnull=False)
    events = CalendarEvent.objects.filter(event_type="maintenance")

    assert planned.count() == 4000
    assert planned.filter(status="scheduled").count() == 2650
    assert planned.filter(status="overdue").count() == 1350
    assert not planned.filter(status="scheduled", scheduled_end__lte=now).exists()
    assert not planned.filter(status="overdue", scheduled_end__gt=now).exists()
    assert events.count() == 4000
    assert (
        events.filter(is_completed=False, activity__schedule__isnull=False).count()
        == 4000
    )
    assert not events.exclude(event_date=F("activity__scheduled_start")).exists()


@pytest.mark.usefixtures("imported", "db")
def test_import_completes_errors_followed_by_a_replacement() -> None:
    errors = CalendarEvent.objects.filter(event_type="error")

    assert errors.filter(is_completed=True).count() == 11884
    assert errors.filter(is_completed=False).count() == 83
    assert (
        CalendarEvent.objects.get(
            external_ref="azure-pdm:error:1:error3:2015-01-06T03"
        ).title
        == "error3 on Machine 0001"
    )


@pytest.mark.usefixtures("imported", "db")
def test_import_rerun_creates_nothing(azure_pdm_dir: Path) -> None:
    before = table_counts()
    first_activity = MaintenanceActivity.objects.get(
        external_ref="azure-pdm:maint:1:comp4:2014-07-01T06"
    )

    output = run_import(azure_pdm_dir, "--today", "2030-06-01")

    assert table_counts() == before
    assert output.count(" 0 created") == 5
    assert "Maintenance activities: 0 created, 36,778 skipped" in output
    assert (
        MaintenanceActivity.objects.get(pk=first_activity.pk).scheduled_start
        == first_activity.scheduled_start
    )


@pytest.mark.usefixtures("empty_database")
def test_import_today_moves_the_newest_record_to_that_date(subset_dir: Path) -> None:
    run_import(subset_dir, "--today", "2031-07-09")

    newest = MaintenanceActivity.objects.filter(status="completed").latest(
        "scheduled_start"
    )
    assert newest.scheduled_start.date() == datetime.date(2031, 7, 9)
    assert newest.scheduled_start.hour == 6
    assert Equipment.objects.count() == 20
    assert Location.objects.count() == 60


@pytest.mark.usefixtures("empty_database")
def test_import_failed_write_leaves_tables_unchanged(
    subset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise DatabaseError("disk full")

    monkeypatch.setattr(CalendarEvent._default_manager, "bulk_create", fail)

    with pytest.raises(DatabaseError, match="disk full"):
        run_import(subset_dir)

    assert set(table_counts().values()) == {0}


@pytest.mark.usefixtures("empty_database")
def test_import_refreshes_cached_dashboards(
    subset_dir: Path,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    def count_activities() -> int:
        return MaintenanceActivity.objects.count()

    scope = uuid.uuid4().hex
    before = get_or_compute(
        "import-test", scope, ["activity"], count_activities, serve_stale=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_import(subset_dir)
    after = get_or_compute(
        "import-test", scope, ["activity"], count_activities, serve_stale=False
    )

    assert before.data == 0
    assert after.status == "miss"
    assert after.data == MaintenanceActivity.objects.count() > 0


MALFORMED = [
    (
        "maint.csv",
        17,
        '2014-07-01 06:00:00,x,"comp4"',
        "maint.csv line 17: machineID 'x' is not a whole number",
    ),
    (
        "maint.csv",
        30000,
        '2015-07-01 06:00:00,900,"comp9"',
        "maint.csv line 30000: comp 'comp9' is not one of comp1, comp2, comp3, comp4",
    ),
    (
        "failures.csv",
        5,
        '2015-13-01 06:00:00,1,"comp1"',
        "failures.csv line 5: datetime '2015-13-01 06:00:00' is not a date and time",
    ),
    (
        "errors.csv",
        9000,
        '2015-07-01 06:00:00,1001,"error1"',
        "errors.csv line 9000: machineID 1001 is not in machines.csv",
    ),
    (
        "errors.csv",
        3,
        '2015-01-06 03:00:00,1,"error3"',
        "errors.csv line 3: repeats line 2 (same datetime, machineID and errorID)",
    ),
    (
        "machines.csv",
        501,
        '500,"model3",old',
        "machines.csv line 501: age 'old' is not a whole number",
    ),
    ("maint.csv", 1, '"datetime","machineID","component"', "column 'comp' is missing"),
]


def assert_refused_leaving_tables_unchanged(
    folder: Path, name: str, line: int, text: str, message: str
) -> None:
    replace_line(folder, name, line, text)
    before = table_counts()

    with pytest.raises(CommandError) as raised:
        run_import(folder)

    assert message in str(raised.value)
    assert str(raised.value).startswith(f"{name} line {line}: ")
    assert table_counts() == before


@pytest.mark.usefixtures("empty_database")
@pytest.mark.parametrize(("name", "line", "text", "message"), MALFORMED)
def test_import_malformed_file_leaves_empty_tables_empty(
    copy_dir: Path, name: str, line: int, text: str, message: str
) -> None:
    assert_refused_leaving_tables_unchanged(copy_dir, name, line, text, message)


@pytest.mark.usefixtures("imported", "db")
@pytest.mark.parametrize(("name", "line", "text", "message"), MALFORMED)
def test_import_malformed_file_leaves_an_import_unchanged(
    copy_dir: Path, name: str, line: int, text: str, message: str
) -> None:
    assert_refused_leaving_tables_unchanged(copy_dir, name, line, text, message)


def test_import_missing_column_lists_the_header(copy_dir: Path) -> None:
    replace_line(copy_dir, "maint.csv", 1, '"datetime","machineID","component"')

    with pytest.raises(CommandError) as raised:
        run_import(copy_dir)

    assert str(raised.value) == (
        "maint.csv line 1: column 'comp' is missing "
        "(the header has datetime, machineID, component)"
    )


def test_import_missing_file_is_named(copy_dir: Path) -> None:
    (copy_dir / "errors.csv").unlink()

    with pytest.raises(CommandError, match=r"^errors\.csv not found in"):
        run_import(copy_dir)


def test_import_missing_folder_says_what_to_pass(tmp_path: Path) -> None:
    folder = tmp_path / "no-such-folder"

    with pytest.raises(CommandError) as raised:
        run_import(folder)

    assert f"the folder '{folder}' does not exist" in str(raised.value)
    assert "pass the folder that holds machines.csv" in str(raised.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--today", "2025-02-30"], "--today '2025-02-30' is not a date"),
        (["--batch-size", "0"], "--batch-size 0 is not positive"),
    ],
)
def test_import_bad_option_is_refused(
    subset_dir: Path, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run_import(subset_dir, *args)


@pytest.mark.usefixtures("empty_database")
def test_import_progress_bars_go_to_stderr_unless_disabled(subset_dir: Path) -> None:
    shown, hidden = io.StringIO(), io.StringIO()

    call_command(
        "import_azure_pdm", str(subset_dir), stdout=io.StringIO(), stderr=shown
    )
    call_command(
        "import_azure_pdm",
        str(subset_dir),
        "--no-progress",
        stdout=io.StringIO(),
        stderr=hidden,
    )

    assert "Maintenance activities: 100%" in shown.getvalue()
    assert hidden.getvalue() == ""


def test_import_help_describes_the_mapping() -> None:
    from core.management.commands.import_azure_pdm import Command

    text = Command().create_parser("manage.py", "import_azure_pdm").format_help()

    assert '("Site 01 / Area A", code S01-A)' in text
    assert "azure-pdm:maint:1:comp4:2014-07-01T06" in text
    assert "--no-progress" in text


@pytest.mark.usefixtures("imported", "db")
def test_import_activity_statuses() -> None:
    per_status = dict(
        MaintenanceActivity.objects.values_list("status")
        .annotate(count=Count("id"))
        .order_by()
    )

    assert per_status == {"completed": 32778, "scheduled": 2650, "overdue": 1350}


@pytest.mark.usefixtures("imported", "db")
def test_import_then_generate_task_plans_no_due_date_twice() -> None:
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from maintenance_perf.maintenance import generate_scheduled_maintenance

    now = shifted("2016-01-01 06:00:00")
    result = generate_scheduled_maintenance(now=now)
    twice = (
        MaintenanceActivity.objects.filter(schedule__isnull=False)
        .annotate(day=TruncDate("scheduled_start"))
        .values("schedule", "day")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )

    assert result["created"] < 4000
    assert list(twice) == []
