"""The dashboard computed with bulk aggregates, in a fixed number of queries.

It shows exactly the figures of :mod:`dashboard.naive` (the tests compare the
two pages) in eight queries, whatever the number of locations or rows:

1. the locations, with their parents;
2. equipment per location and status (also the status totals);
3. maintenance activities per location, status, overdue and due soon (also
   the status totals);
4. open calendar events per location;
5. the most overdue activities, 6. the next due, 7. the upcoming events,
   each with its equipment and location joined in;
8. activities per week of their scheduled start and of their actual end.

Two queries each serve several figures because one grouped scan can: a
status total is the sum of its per-location counts.
"""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

from django.db.models import BooleanField, Case, Q, Value, When
from django.utils import timezone

from core.models import Location
from dashboard.naive import (
    DUE_SOON_DAYS,
    LIST_LENGTH,
    _activity_row,
    _event_row,
    week_starts,
)
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity
from maintenance_perf.aggregates import PeriodStart, count_by, pivot

Activity = MaintenanceActivity
STATUS = Activity.STATUS
ROW_FIGURES = ("equipment", "in_maintenance", "overdue", "due_soon", "open_events")


def flag(condition: Q) -> Case:
    """Return an expression that is true where ``condition`` holds."""
    return Case(
        When(condition, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def overdue_condition(now: datetime.datetime) -> Q:
    """Marked overdue, or still open after the scheduled end."""
    return Q(status=STATUS.overdue) | Q(
        status__in=[STATUS.scheduled, STATUS.in_progress], scheduled_end__lt=now
    )


def compute_dashboard(now: datetime.datetime | None = None) -> dict[str, Any]:
    """Compute every figure on the dashboard in eight queries."""
    now = now or timezone.now()
    soon = now + datetime.timedelta(days=DUE_SOON_DAYS)
    overdue = overdue_condition(now)
    due_soon = Q(
        status=STATUS.scheduled, scheduled_start__gte=now, scheduled_start__lt=soon
    )

    locations = list(
        Location.objects.order_by("name", "pk").values("pk", "name", "parent")
    )
    ids = [location["pk"] for location in locations]

    equipment = pivot(Equipment.objects.all(), "location", "status", row_keys=ids)
    work = count_by(
        Activity.objects.all(),
        "equipment__location",
        "status",
        flag(overdue),
        flag(due_soon),
        keys=ids,
    )
    open_events = count_by(
        CalendarEvent.objects.filter(is_completed=False, equipment__isnull=False),
        "equipment__location",
        keys=ids,
    )

    rows = {}
    activities_by_status: Counter[str] = Counter()
    for pk in ids:
        figures: Counter[str] = Counter()
        for status, by_overdue in work[pk].items():
            for is_overdue, by_due in by_overdue.items():
                for is_due, count in by_due.items():
                    activities_by_status[status] += count
                    figures["overdue"] += count if is_overdue else 0
                    figures["due_soon"] += count if is_due else 0
        rows[pk] = {
            "equipment": equipment["row_totals"][pk],
            "in_maintenance": equipment["rows"][pk][Equipment.STATUS.in_maintenance],
            "overdue": figures["overdue"],
            "due_soon": figures["due_soon"],
            "open_events": open_events[pk],
        }

    return {
        "now": now,
        "equipment_total": equipment["total"],
        "equipment_by_status": [
            {
                "status": value,
                "label": label,
                "count": equipment["column_totals"][value],
            }
            for value, label in Equipment.STATUS
        ],
        "sites": _sites(locations, rows),
        "activities_by_status": [
            {"status": value, "label": label, "count": activities_by_status[value]}
            for value, label in STATUS
        ],
        "most_overdue": [
            _activity_row(activity)
            for activity in Activity.objects.filter(overdue)
            .select_related("equipment__location")
            .order_by("scheduled_end", "pk")[:LIST_LENGTH]
        ],
        "next_due": [
            _activity_row(activity)
            for activity in Activity.objects.filter(
                status=STATUS.scheduled, scheduled_start__gte=now
            )
            .select_related("equipment__location")
            .order_by("scheduled_start", "pk")[:LIST_LENGTH]
        ],
        "upcoming_events": [
            _event_row(event)
            for event in CalendarEvent.objects.filter(
                is_completed=False, event_date__gte=now
            )
            .select_related("equipment__location")
            .order_by("event_date", "pk")[:LIST_LENGTH]
        ],
        "weeks": _weeks(now),
    }


def _sites(
    locations: list[dict[str, Any]], rows: dict[int, dict[str, int]]
) -> list[dict[str, Any]]:
    """Group the location rows under their sites, as the naive page does."""
    areas: dict[int, list[dict[str, Any]]] = {}
    for location in locations:
        if location["parent"] is not None:
            areas.setdefault(location["parent"], []).append(location)

    sites = []
    for site in (location for location in locations if location["parent"] is None):
        members = areas.get(site["pk"]) or [site]
        site_rows = [
            {"id": member["pk"], "name": member["name"], **rows[member["pk"]]}
            for member in members
        ]
        totals = {key: sum(row[key] for row in site_rows) for key in ROW_FIGURES}
        sites.append(
            {
                "id": site["pk"],
                "name": site["name"],
                "rows": site_rows,
                "totals": totals,
            }
        )
    return sites


def _weeks(now: datetime.datetime) -> list[dict[str, Any]]:
    """Count scheduled and completed activities per local week, in one query."""
    starts = week_starts(now)
    first, end = starts[0], starts[-1] + datetime.timedelta(weeks=1)
    in_window = Q(scheduled_start__gte=first, scheduled_start__lt=end) | Q(
        actual_end__gte=first, actual_end__lt=end
    )
    counts = count_by(
        Activity.objects.filter(in_window),
        "status",
        PeriodStart("scheduled_start", "week"),
        PeriodStart("actual_end", "week"),
    )

    scheduled: Counter[datetime.date] = Counter()
    completed: Counter[datetime.date] = Counter()
    for status, by_start in counts.items():
        for start_week, by_end in by_start.items():
            for end_week, count in by_end.items():
                if status != STATUS.cancelled:
                    scheduled[start_week] += count
                if status == STATUS.completed:
                    completed[end_week] += count

    return [
        {
            "start": start.date(),
            "completed": completed[start.date()],
            "scheduled": scheduled[start.date()],
        }
        for start in starts
    ]
