"""The dashboard computed the slow way, as a typical maintenance site does it.

This is the "before" every optimisation is measured against: a loop over
locations issuing ``.filter().count()`` per figure, and lists whose rows each
fetch their related equipment and location. It stays at ``/naive/`` for good.
Its numbers define what the dashboard means; faster versions must match them.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from core.models import Location
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity

#: How many rows the overdue, due-next and upcoming-event lists show.
LIST_LENGTH = 20
#: Weeks in the completed-versus-scheduled chart, the current week included.
CHART_WEEKS = 12
#: "Due soon" means starting within this many days from now.
DUE_SOON_DAYS = 7

Activity = MaintenanceActivity
STATUS = Activity.STATUS


def week_starts(
    now: datetime.datetime, weeks: int = CHART_WEEKS
) -> list[datetime.datetime]:
    """Return the local Monday midnights of the last ``weeks`` weeks, oldest first."""
    today = timezone.localtime(now).date()
    monday = today - datetime.timedelta(days=today.weekday())
    tz = timezone.get_current_timezone()
    return [
        datetime.datetime.combine(
            monday - datetime.timedelta(weeks=weeks - 1 - index), datetime.time(), tz
        )
        for index in range(weeks)
    ]


def compute_dashboard(now: datetime.datetime | None = None) -> dict[str, Any]:
    """Compute every figure on the dashboard, one query per figure."""
    now = now or timezone.now()
    soon = now + datetime.timedelta(days=DUE_SOON_DAYS)

    equipment_by_status = [
        {
            "status": value,
            "label": label,
            "count": Equipment.objects.filter(status=value).count(),
        }
        for value, label in Equipment.STATUS
    ]
    equipment_total = Equipment.objects.count()

    sites = []
    for site in Location.objects.filter(parent__isnull=True):
        areas = list(Location.objects.filter(parent=site)) or [site]
        rows = [_location_row(area, now, soon) for area in areas]
        totals = {
            key: sum(row[key] for row in rows)
            for key in (
                "equipment",
                "in_maintenance",
                "overdue",
                "due_soon",
                "open_events",
            )
        }
        sites.append({"id": site.pk, "name": site.name, "rows": rows, "totals": totals})

    activities_by_status = [
        {
            "status": value,
            "label": label,
            "count": Activity.objects.filter(status=value).count(),
        }
        for value, label in STATUS
    ]

    most_overdue = [
        _activity_row(activity)
        for activity in _overdue(now).order_by("scheduled_end", "pk")[:LIST_LENGTH]
    ]
    next_due = [
        _activity_row(activity)
        for activity in Activity.objects.filter(
            status=STATUS.scheduled, scheduled_start__gte=now
        ).order_by("scheduled_start", "pk")[:LIST_LENGTH]
    ]
    upcoming_events = [
        _event_row(event)
        for event in CalendarEvent.objects.filter(
            is_completed=False, event_date__gte=now
        ).order_by("event_date", "pk")[:LIST_LENGTH]
    ]

    weeks = []
    for start in week_starts(now):
        end = start + datetime.timedelta(weeks=1)
        weeks.append(
            {
                "start": start.date(),
                "completed": Activity.objects.filter(
                    status=STATUS.completed, actual_end__gte=start, actual_end__lt=end
                ).count(),
                "scheduled": Activity.objects.filter(
                    scheduled_start__gte=start, scheduled_start__lt=end
                )
                .exclude(status=STATUS.cancelled)
                .count(),
            }
        )

    return {
        "now": now,
        "equipment_total": equipment_total,
        "equipment_by_status": equipment_by_status,
        "sites": sites,
        "activities_by_status": activities_by_status,
        "most_overdue": most_overdue,
        "next_due": next_due,
        "upcoming_events": upcoming_events,
        "weeks": weeks,
    }


def _overdue(now: datetime.datetime) -> Any:
    """Activities marked overdue, or still open after their scheduled end."""
    return Activity.objects.filter(status=STATUS.overdue) | Activity.objects.filter(
        status__in=[STATUS.scheduled, STATUS.in_progress], scheduled_end__lt=now
    )


def _location_row(
    location: Location, now: datetime.datetime, soon: datetime.datetime
) -> dict[str, Any]:
    return {
        "id": location.pk,
        "name": location.name,
        "equipment": Equipment.objects.filter(location=location).count(),
        "in_maintenance": Equipment.objects.filter(
            location=location, status=Equipment.STATUS.in_maintenance
        ).count(),
        "overdue": _overdue(now).filter(equipment__location=location).count(),
        "due_soon": Activity.objects.filter(
            equipment__location=location,
            status=STATUS.scheduled,
            scheduled_start__gte=now,
            scheduled_start__lt=soon,
        ).count(),
        "open_events": CalendarEvent.objects.filter(
            equipment__location=location, is_completed=False
        ).count(),
    }


def _activity_row(activity: MaintenanceActivity) -> dict[str, Any]:
    # Each attribute access below is a query of its own: the N+1 pattern.
    equipment = activity.equipment
    return {
        "id": activity.pk,
        "title": activity.title,
        "status": activity.status,
        "status_label": activity.get_status_display(),
        "priority_label": activity.get_priority_display(),
        "scheduled_start": activity.scheduled_start,
        "scheduled_end": activity.scheduled_end,
        "equipment": equipment.name,
        "location": equipment.location.name,
    }


def _event_row(event: CalendarEvent) -> dict[str, Any]:
    equipment = event.equipment
    return {
        "id": event.pk,
        "title": event.title,
        "event_date": event.event_date,
        "event_type": event.get_event_type_display(),
        "equipment": equipment.name if equipment else "",
        "location": equipment.location.name if equipment else "",
    }
