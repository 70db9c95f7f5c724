from __future__ import annotations

import datetime
import hashlib
import io
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Q

from core.models import Location
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity, MaintenanceSchedule

if TYPE_CHECKING:
    from django.db.models import QuerySet

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2025, 3, 14)
START_OF_TODAY = datetime.datetime.combine(
    TODAY, datetime.time(), datetime.timezone.utc
)
START_OF_TOMORROW = START_OF_TODAY + datetime.timedelta(days=1)
SMALL = [
    "--locations",
    "12",
    "--equipment",
    "120",
    "--activities",
    "1000",
    "--schedules",
    "150",
    "--events",
    "300",
    "--today",
    TODAY.isoformat(),
]


def generate(*args: str) -> str:
    output = io.StringIO()
    call_command(
        "generate_maintenance_data",
        "--no-progress",
        *args,
        stdout=output,
        stderr=io.StringIO(),
    )
    return output.getvalue()


def generated_counts() -> dict[str, int]:
    return {
        "locations": Location.objects.filter(code__startswith="GEN-").count(),
        "equipment": Equipment.objects.filter(code__startswith="GEN-").count(),
        "schedules": MaintenanceSchedule.objects.filter(
            external_ref__startswith="generated:"
        ).count(),
        "activities": MaintenanceActivity.objects.filter(
            external_ref__startswith="generated:"
        ).count(),
        "events": CalendarEvent.objects.filter(
            external_ref__startswith="generated:"
        ).count(),
    }


def generated_activities() -> QuerySet[MaintenanceActivity]:
    return MaintenanceActivity.objects.filter(external_ref__startswith="generated:")


def digest() -> str:
    """A hash of every generated row's content, with keys in place of ids."""
    tables = [
        Location.objects.filter(code__startswith="GEN-")
        .order_by("code")
        .values_list("code", "name", "parent__code"),
        Equipment.objects.filter(code__startswith="GEN-")
        .order_by("code")
        .values_list(
            "code", "name", "location__code", "category", "status", "commissioned_on"
        ),
        MaintenanceSchedule.objects.filter(external_ref__startswith="generated:")
        .order_by("external_ref")
        .values_list(
            "external_ref",
            "title",
            "equipment__code",
            "activity_type",
            "frequency_days",
            "next_due_date",
            "is_active",
        ),
        MaintenanceActivity.objects.filter(external_ref__startswith="generated:")
        .order_by("external_ref")
        .values_list(
            "external_ref",
            "title",
            "equipment__code",
            "schedule__external_ref",
            "activity_type",
            "status",
            "priority",
            "scheduled_start",
            "scheduled_end",
            "actual_start",
            "actual_end",
        ),
        CalendarEvent.objects.filter(external_ref__startswith="generated:")
        .order_by("external_ref")
        .values_list(
            "external_ref",
            "title",
            "event_type",
            "event_date",
            "equipment__code",
            "activity__external_ref",
            "is_completed",
        ),
    ]
    return hashlib.sha256(repr([list(rows) for rows in tables]).encode()).hexdigest()


def delete_generated() -> None:
    CalendarEvent.objects.filter(external_ref__startswith="generated:").delete()
    MaintenanceActivity.objects.filter(external_ref__startswith="generated:").delete()
    MaintenanceSchedule.objects.filter(external_ref__startswith="generated:").delete()
    Equipment.objects.filter(code__startswith="GEN-").delete()
    Location.objects.filter(code__startswith="GEN-", parent__isnull=False).delete()
    Location.objects.filter(code__startswith="GEN-").delete()


def test_generate_creates_the_requested_counts() -> None:
    output = generate(*SMALL)

    assert generated_counts() == {
        "locations": 12,
        "equipment": 120,
        "schedules": 150,
        "activities": 1000,
        "events": 300,
    }
    assert "Maintenance activities: 1,000 created, 0 skipped" in output


def test_generate_defaults_schedules_and_events_from_other_counts() -> None:
    generate("--locations", "3", "--equipment", "30", "--activities", "100")

    counts = generated_counts()
    assert counts["schedules"] == 30
    assert counts["events"] == 20


def test_generate_many_activities_on_one_schedule_keep_start_times_apart() -> None:
    generate(
        *SMALL,
        "--locations",
        "1",
        "--equipment",
        "1",
        "--schedules",
        "1",
        "--activities",
        "3000",
    )

    activities = generated_activities()
    linked = activities.filter(schedule__isnull=False)
    assert activities.count() == 3000
    assert linked.count() > 1000
    assert linked.values("scheduled_start").distinct().count() == linked.count()


def test_generate_groups_areas_under_sites_with_equipment_everywhere() -> None:
    generate(*SMALL)

    sites = Location.objects.filter(code__startswith="GEN-", parent__isnull=True)
    areas = Location.objects.filter(code__startswith="GEN-", parent__isnull=False)
    per_area = Counter(
        Equipment.objects.filter(code__startswith="GEN-").values_list(
            "location__code", flat=True
        )
    )
    assert sites.count() == 2
    assert [site.areas.count() for site in sites] == [5, 5]
    assert set(per_area) == set(areas.values_list("code", flat=True))
    assert len(set(per_area.values())) > 1


def test_generate_mixes_statuses_around_today() -> None:
    generate(*SMALL)
    activities = generated_activities()

    assert set(activities.values_list("status", flat=True)) == {
        "completed",
        "scheduled",
        "overdue",
        "in_progress",
        "cancelled",
    }
    assert set(
        Equipment.objects.filter(code__startswith="GEN-").values_list(
            "status", flat=True
        )
    ) == {"operational", "in_maintenance", "out_of_service", "retired"}
    assert set(activities.values_list("activity_type", flat=True)) == {
        "preventive",
        "corrective",
        "inspection",
    }
    assert not activities.filter(
        status="completed", actual_end__gte=START_OF_TODAY
    ).exists()
    assert not activities.filter(
        status="overdue", scheduled_end__gt=START_OF_TODAY
    ).exists()
    assert not activities.filter(
        Q(scheduled_start__lt=START_OF_TOMORROW)
        | Q(scheduled_start__gt=START_OF_TODAY + datetime.timedelta(days=43)),
        status="scheduled",
    ).exists()
    assert not activities.filter(
        Q(actual_start__gte=START_OF_TODAY) | Q(scheduled_end__lt=START_OF_TOMORROW),
        status="in_progress",
    ).exists()


def test_generate_links_maintenance_events_to_activities() -> None:
    generate(*SMALL)
    events = CalendarEvent.objects.filter(external_ref__startswith="generated:")
    linked = events.filter(event_type="maintenance")

    assert linked.count() > 0
    assert not linked.filter(activity__isnull=True).exists()
    assert linked.values("activity").distinct().count() == linked.count()
    assert set(events.values_list("event_type", flat=True)) == {
        "maintenance",
        "error",
        "inspection",
    }
    assert not linked.filter(activity__status="completed", is_completed=False).exists()


def test_generate_same_seed_gives_identical_rows() -> None:
    generate(*SMALL, "--seed", "7")
    first = digest()
    delete_generated()
    generate(*SMALL, "--seed", "7")
    second = digest()
    delete_generated()
    generate(*SMALL, "--seed", "8")

    assert second == first
    assert digest() != first


def test_generate_rerun_creates_nothing() -> None:
    generate(*SMALL)
    before = generated_counts()

    output = generate(*SMALL)

    assert generated_counts() == before
    assert output.count(" 0 created") == 5
    assert "Calendar events: 0 created, 300 skipped" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--equipment", "0"], "--equipment 0 is not a positive number of rows"),
        (["--activities", "-5"], "--activities -5 is not a positive number of rows"),
        (["--schedules", "0"], "--schedules 0 is not a positive number of rows"),
        (["--events", "-1"], "--events -1 is not a positive number of rows"),
        (["--locations", "0"], "--locations 0 is not a positive number of rows"),
        (
            ["--locations", "300", "--equipment", "200"],
            "--locations 300 is more than --equipment 200, but every location needs "
            "equipment; lower --locations or raise --equipment",
        ),
        (["--batch-size", "0"], "--batch-size 0 is not positive"),
        (["--today", "2025-02-30"], "--today '2025-02-30' is not a date; write it"),
        (["--today", "9999-12-30"], "--today 9999-12-30 is too near the calendar"),
    ],
)
def test_generate_bad_arguments_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as raised:
        generate("--equipment", "200", "--activities", "300", *args)

    assert message in str(raised.value)
    assert set(generated_counts().values()) == {0}


def test_generate_progress_bars_go_to_stderr() -> None:
    errors = io.StringIO()

    call_command(
        "generate_maintenance_data",
        *SMALL,
        stdout=io.StringIO(),
        stderr=errors,
    )

    assert "Maintenance activities: 100%" in errors.getvalue()
    assert "1000/1000" in errors.getvalue()
