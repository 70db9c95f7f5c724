from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tests.dashboard_pages import expected_dashboard, read_dashboard

if TYPE_CHECKING:
    from pathlib import Path

    from django.test import Client
    from pytest_django.fixtures import SettingsWrapper

pytestmark = pytest.mark.django_db

DASHBOARDS = ["dashboard:index", "dashboard:naive"]


@pytest.fixture
def site_data() -> dict[str, object]:
    """Two sites, one with two areas, one without, and work in every state."""
    now = timezone.now()
    hour = datetime.timedelta(hours=1)
    north = factories.location("North")
    hall = factories.location("North / Hall", parent=north)
    yard = factories.location("North / Yard", parent=north)
    south = factories.location("South")

    press = factories.equipment(hall, name="Press")
    lathe = factories.equipment(hall, "in_maintenance", name="Lathe")
    crane = factories.equipment(yard, "out_of_service", name="Crane")
    pump = factories.equipment(south, name="Pump")

    late = factories.activity(press, "scheduled", now - 30 * hour)
    later = factories.activity(crane, "in_progress", now - 50 * hour)
    marked = factories.activity(pump, "overdue", now - 10 * hour)
    factories.activity(lathe, "completed", now - 24 * 3 * hour)
    factories.activity(lathe, "completed", now - 24 * 20 * hour)
    factories.activity(pump, "cancelled", now - 24 * 2 * hour)
    soon = factories.activity(press, "scheduled", now + 5 * hour)
    factories.activity(pump, "scheduled", now + 24 * 9 * hour)

    factories.event(now + 5 * hour, press, activity=soon)
    factories.event(now - 5 * hour, lathe, event_type="error")
    factories.event(now + 2 * hour, pump, is_completed=True)
    factories.event(now + 7 * hour)
    return {
        "now": now,
        "areas": [hall, yard, south],
        "overdue": [later, late, marked],
        "soon": soon,
    }


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_figures_equal_independent_counts(
    client: Client, site_data: dict[str, object], name: str
) -> None:
    response = client.get(reverse(name))

    assert response.status_code == 200
    shown = read_dashboard(response.content.decode())
    expected = expected_dashboard(response.context["now"])
    for key, value in expected.items():
        assert shown[key] == value, key


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_figures_by_hand(
    client: Client, site_data: dict[str, object], name: str
) -> None:
    shown = read_dashboard(client.get(reverse(name)).content.decode())
    hall, yard, south = site_data["areas"]  # type: ignore[misc]

    assert shown["equipment_by_status"] == {
        "total": 4,
        "operational": 2,
        "in_maintenance": 1,
        "out_of_service": 1,
        "retired": 0,
    }
    assert shown["activities_by_status"] == {
        "scheduled": 3,
        "in_progress": 1,
        "completed": 2,
        "overdue": 1,
        "cancelled": 1,
    }
    # equipment, in maintenance, overdue, due in 7 days, open events
    assert shown["locations"] == {
        hall.pk: (2, 1, 1, 1, 2),
        yard.pk: (1, 0, 1, 0, 0),
        south.pk: (1, 0, 1, 0, 0),
    }
    assert shown["site_totals"] == [(3, 1, 2, 1, 2), (1, 0, 1, 0, 0)]
    assert shown["most_overdue"] == [a.pk for a in site_data["overdue"]]  # type: ignore[attr-defined]
    assert shown["next_due"][0] == site_data["soon"].pk  # type: ignore[attr-defined]
    assert len(shown["upcoming_events"]) == 2


def test_dashboard_empty_database_says_how_to_load_data(client: Client) -> None:
    response = client.get(reverse("dashboard:index"))

    assert response.status_code == 200
    assert "No locations yet" in response.content.decode()


def test_naive_dashboard_queries_grow_with_locations(client: Client) -> None:
    site = factories.location("Site")
    for _ in range(3):
        factories.equipment(factories.location(parent=site))

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("dashboard:naive"))
        return len(captured)

    three = queries()
    factories.location(parent=site)

    # Five counts per location: the N+1 pattern the naive page keeps on purpose.
    assert queries() == three + 5


def test_dashboard_debug_footer_shows_queries_and_time(
    client: Client, settings: SettingsWrapper, site_data: dict[str, object]
) -> None:
    settings.DEBUG = True

    html = client.get(reverse("dashboard:naive")).content.decode()

    assert re.search(r'id="query-stats">\d+ SQL queries, \d+ ms<', html)


def test_dashboard_footer_hidden_without_debug(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.DEBUG = False

    html = client.get(reverse("dashboard:index")).content.decode()

    assert "SQL queries" not in html


def test_dashboard_template_can_be_overridden(
    client: Client, settings: SettingsWrapper, tmp_path: Path
) -> None:
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / "activity_table.html").write_text(
        "<p>our own activity table</p>"
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]

    html = client.get(reverse("dashboard:index")).content.decode()

    assert html.count("<p>our own activity table</p>") == 2


def test_dashboard_week_bucket_follows_local_time_zone(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.TIME_ZONE = "Pacific/Auckland"
    now = timezone.now()
    local_monday = timezone.localtime(now).date() - datetime.timedelta(
        days=timezone.localtime(now).weekday()
    )
    tz = timezone.get_current_timezone()
    # 23:30 on the local Sunday before this week: last week in Auckland, even
    # though in UTC it is a different day.
    sunday_night = datetime.datetime.combine(
        local_monday - datetime.timedelta(days=1), datetime.time(23, 30), tz
    )
    pump = factories.equipment(factories.location())
    factories.activity(
        pump, "completed", sunday_night - datetime.timedelta(hours=2), hours=2
    )

    shown = read_dashboard(client.get(reverse("dashboard:naive")).content.decode())

    last_week = (local_monday - datetime.timedelta(weeks=1)).isoformat()
    assert shown["weeks"][last_week] == (1, 1)
    assert shown["weeks"][local_monday.isoformat()] == (0, 0)


def build_sites(count: int) -> None:
    """``count`` areas in sites of five, each with equipment and open work."""
    from core.models import Location
    from equipment.models import Equipment
    from maintenance.models import MaintenanceActivity

    now = timezone.now()
    sites = Location.objects.bulk_create(
        [Location(name=f"Site {n}", code=f"S{n}") for n in range(count // 5 or 1)]
    )
    areas = Location.objects.bulk_create(
        [
            Location(name=f"Area {n}", code=f"A{n}", parent=sites[n % len(sites)])
            for n in range(count)
        ]
    )
    machines = Equipment.objects.bulk_create(
        [
            Equipment(name=f"M{n}", code=f"M{n}", location=area)
            for n, area in enumerate(areas)
        ]
    )
    MaintenanceActivity.objects.bulk_create(
        [
            MaintenanceActivity(
                title="Check",
                equipment=machine,
                status=status,
                scheduled_start=now + datetime.timedelta(hours=offset),
                scheduled_end=now + datetime.timedelta(hours=offset + 2),
            )
            for machine in machines
            for status, offset in (
                ("scheduled", -30),
                ("scheduled", 20),
                ("overdue", -5),
            )
        ]
    )


@pytest.mark.parametrize("locations", [10, 1000])
def test_dashboard_cold_load_runs_eight_queries_at_any_size(
    client: Client, django_assert_num_queries: Any, locations: int
) -> None:
    build_sites(locations)

    with django_assert_num_queries(8):
        response = client.get(reverse("dashboard:index"))

    shown = read_dashboard(response.content.decode())
    expected = expected_dashboard(response.context["now"])
    assert len(shown["locations"]) == locations
    assert shown["activities_by_status"]["overdue"] == locations
    for key, value in expected.items():
        assert shown[key] == value, key
