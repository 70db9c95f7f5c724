"""Small builders for test data on the example project's models."""

from __future__ import annotations

import datetime
import itertools
from typing import Any

from core.models import Location
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity

_sequence = itertools.count(1)


def location(name: str | None = None, parent: Location | None = None) -> Location:
    number = next(_sequence)
    return Location.objects.create(
        name=name or f"Location {number}", code=f"L{number}", parent=parent
    )


def equipment(at: Location, status: str = "operational", **fields: Any) -> Equipment:
    number = next(_sequence)
    return Equipment.objects.create(
        name=fields.pop("name", f"Equipment {number}"),
        code=f"E{number}",
        location=at,
        status=status,
        **fields,
    )


def activity(
    on: Equipment,
    status: str,
    start: datetime.datetime,
    hours: float = 2,
    **fields: Any,
) -> MaintenanceActivity:
    end = start + datetime.timedelta(hours=hours)
    if status == "completed":
        fields.setdefault("actual_start", start)
        fields.setdefault("actual_end", end)
    return MaintenanceActivity.objects.create(
        title=fields.pop("title", f"Activity {next(_sequence)}"),
        equipment=on,
        status=status,
        scheduled_start=start,
        scheduled_end=end,
        **fields,
    )


def event(
    when: datetime.datetime, on: Equipment | None = None, **fields: Any
) -> CalendarEvent:
    return CalendarEvent.objects.create(
        title=fields.pop("title", f"Event {next(_sequence)}"),
        event_date=when,
        equipment=on,
        **fields,
    )
