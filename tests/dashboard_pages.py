"""Read the figures back out of a rendered dashboard page, and compute them
independently in plain Python, so tests compare what a user sees."""

from __future__ import annotations

import datetime
import re
from typing import Any

from django.utils import timezone

from core.models import Location
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity

NUMBER_CELLS = r'<td class="num">(\d+)</td>' * 5


def read_dashboard(html: str) -> dict[str, Any]:
    """Return the numbers and list rows a user reads on the dashboard."""
    sections = dict(
        re.findall(r'<section[^>]*id="([\w-]+)">(.*?)</section>', html, re.S)
    )

    def tiles(section: str) -> dict[str, int]:
        found = re.findall(r'data-status="(\w+)">(\d+)<', sections[section])
        return {status: int(count) for status, count in found}

    def ids(section: str, attribute: str) -> list[int]:
        return [
            int(pk)
            for pk in re.findall(rf'data-{attribute}="(\d+)"', sections[section])
        ]

    locations = {
        int(pk): tuple(int(n) for n in numbers)
        for pk, *numbers in re.findall(
            r'<tr data-location="(\d+)"><td>[^<]*</td>' + NUMBER_CELLS, html
        )
    }
    site_totals = [
        tuple(int(n) for n in numbers)
        for numbers in re.findall(
            r'<tr class="total"><td>[^<]*</td>' + NUMBER_CELLS, html
        )
    ]
    weeks = {
        day: (int(scheduled), int(completed))
        for day, scheduled, completed in re.findall(
            r'<tr data-week="([\d-]+)"><td>[\d-]+</td><td class="num">(\d+)</td>'
            r'<td class="num">(\d+)</td></tr>',
            sections["weekly-chart"],
        )
    }
    return {
        "equipment_by_status": tiles("equipment-by-status"),
        "activities_by_status": tiles("activities-by-status"),
        "locations": locations,
        "site_totals": site_totals,
        "most_overdue": ids("most-overdue", "activity"),
        "next_due": ids("next-due", "activity"),
        "upcoming_events": ids("upcoming-events", "event"),
        "weeks": weeks,
    }


def expected_dashboard(now: datetime.datetime) -> dict[str, Any]:
    """Compute the dashboard's figures from every row, in Python."""
    status = MaintenanceActivity.STATUS
    soon = now + datetime.timedelta(days=7)
    equipment = list(Equipment.objects.values("id", "location_id", "status"))
    location_of = {row["id"]: row["location_id"] for row in equipment}
    activities = list(
        MaintenanceActivity.objects.values(
            "id",
            "equipment_id",
            "status",
            "scheduled_start",
            "scheduled_end",
            "actual_end",
        )
    )
    events = list(
        CalendarEvent.objects.values("id", "equipment_id", "is_completed", "event_date")
    )

    def overdue(row: dict[str, Any]) -> bool:
        return row["status"] == status.overdue or (
            row["status"] in (status.scheduled, status.in_progress)
            and row["scheduled_end"] < now
        )

    def due_soon(row: dict[str, Any]) -> bool:
        return (
            row["status"] == status.scheduled and now <= row["scheduled_start"] < soon
        )

    locations = {}
    all_locations = list(Location.objects.values("id", "parent_id"))
    has_areas = {row["parent_id"] for row in all_locations if row["parent_id"]}
    for row in all_locations:
        if row["parent_id"] is None and row["id"] in has_areas:
            continue
        pk = row["id"]
        locations[pk] = (
            sum(1 for e in equipment if e["location_id"] == pk),
            sum(
                1
                for e in equipment
                if e["location_id"] == pk and e["status"] == "in_maintenance"
            ),
            sum(
                1
                for a in activities
                if location_of[a["equipment_id"]] == pk and overdue(a)
            ),
            sum(
                1
                for a in activities
                if location_of[a["equipment_id"]] == pk and due_soon(a)
            ),
            sum(
                1
                for e in events
                if e["equipment_id"]
                and location_of[e["equipment_id"]] == pk
                and not e["is_completed"]
            ),
        )

    today = timezone.localtime(now).date()
    monday = today - datetime.timedelta(days=today.weekday())
    weeks = {}
    for back in range(11, -1, -1):
        first = monday - datetime.timedelta(weeks=back)
        days = {first + datetime.timedelta(days=offset) for offset in range(7)}
        weeks[first.isoformat()] = (
            sum(
                1
                for a in activities
                if a["status"] != status.cancelled
                and _local_date(a["scheduled_start"]) in days
            ),
            sum(
                1
                for a in activities
                if a["status"] == status.completed
                and _local_date(a["actual_end"]) in days
            ),
        )

    overdue_rows = sorted(
        (a for a in activities if overdue(a)),
        key=lambda a: (a["scheduled_end"], a["id"]),
    )
    next_rows = sorted(
        (
            a
            for a in activities
            if a["status"] == status.scheduled and a["scheduled_start"] >= now
        ),
        key=lambda a: (a["scheduled_start"], a["id"]),
    )
    event_rows = sorted(
        (e for e in events if not e["is_completed"] and e["event_date"] >= now),
        key=lambda e: (e["event_date"], e["id"]),
    )
    return {
        "equipment_by_status": {
            "total": len(equipment),
            **{
                value: sum(1 for e in equipment if e["status"] == value)
                for value, _ in Equipment.STATUS
            },
        },
        "activities_by_status": {
            value: sum(1 for a in activities if a["status"] == value)
            for value, _ in status
        },
        "locations": locations,
        "most_overdue": [a["id"] for a in overdue_rows[:20]],
        "next_due": [a["id"] for a in next_rows[:20]],
        "upcoming_events": [e["id"] for e in event_rows[:20]],
        "weeks": weeks,
    }


def _local_date(moment: datetime.datetime | None) -> datetime.date | None:
    return timezone.localtime(moment).date() if moment else None
