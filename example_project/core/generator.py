"""Make up a maintenance data set of any size, the same one for the same request.

The rows look like a real site's: plants with areas, equipment of common
kinds in a mix of statuses, a year of completed work, open work over the
next six weeks, some of it overdue, recurring schedules and calendar events.
Everything comes from one ``random.Random(seed)``, so a request always gives
the same rows; keys start with ``generated:`` (codes with ``GEN-``).
"""

from __future__ import annotations

import datetime
import logging
import math
import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

from core.loading import (
    ActivityRow,
    EquipmentRow,
    EventRow,
    LocationRow,
    Plan,
    ScheduleRow,
)
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity

logger = logging.getLogger(__name__)

REF_PREFIX = "generated"
CODE_PREFIX = "GEN"
AREAS_PER_SITE = 5
AREA_LETTERS = "ABCDE"

STATUS = MaintenanceActivity.STATUS
PRIORITY = MaintenanceActivity.PRIORITY
ACTIVITY_TYPE = MaintenanceActivity.ACTIVITY_TYPE
EVENT_TYPE = CalendarEvent.EVENT_TYPE

CATEGORIES = (
    "Pump",
    "Compressor",
    "Conveyor",
    "CNC mill",
    "Boiler",
    "Chiller",
    "Generator",
    "Hydraulic press",
    "Forklift",
    "Air handling unit",
)
TASKS = {
    ACTIVITY_TYPE.preventive: (
        "Lubricate bearings",
        "Replace filters",
        "Check belts and tension",
        "Calibrate sensors",
        "Replace seals",
        "Clean heat exchanger",
    ),
    ACTIVITY_TYPE.inspection: (
        "Safety inspection",
        "Vibration analysis",
        "Thermal imaging",
        "Oil analysis",
    ),
    ACTIVITY_TYPE.corrective: (
        "Repair leak",
        "Replace motor",
        "Fix electrical fault",
        "Replace worn bearing",
        "Clear blockage",
    ),
}
ERRORS = (
    "Overheating",
    "Vibration alarm",
    "Pressure drop",
    "Sensor fault",
    "Power dip",
)


Value = TypeVar("Value")


class Weighted(Generic[Value]):
    """Draw one of the keys of ``pairs``, as often as its weight says."""

    def __init__(self, pairs: dict[Value, float]) -> None:
        self.values = list(pairs)
        self.cumulative = list(accumulate(pairs.values()))

    def draw(self, rng: random.Random) -> Value:
        return rng.choices(self.values, cum_weights=self.cumulative)[0]


EQUIPMENT_STATUS: Weighted[str] = Weighted(
    {
        Equipment.STATUS.operational: 85,
        Equipment.STATUS.in_maintenance: 7,
        Equipment.STATUS.out_of_service: 5,
        Equipment.STATUS.retired: 3,
    }
)
ACTIVITY_STATUS: Weighted[str] = Weighted(
    {
        STATUS.completed: 70,
        STATUS.scheduled: 17,
        STATUS.overdue: 5,
        STATUS.in_progress: 3,
        STATUS.cancelled: 5,
    }
)
ACTIVITY_TYPES: Weighted[str] = Weighted(
    {
        ACTIVITY_TYPE.preventive: 60,
        ACTIVITY_TYPE.corrective: 30,
        ACTIVITY_TYPE.inspection: 10,
    }
)
PRIORITIES: dict[str, Weighted[int]] = {
    ACTIVITY_TYPE.corrective: Weighted(
        {PRIORITY.low: 5, PRIORITY.medium: 25, PRIORITY.high: 45, PRIORITY.critical: 25}
    ),
    "planned": Weighted(
        {PRIORITY.low: 30, PRIORITY.medium: 50, PRIORITY.high: 15, PRIORITY.critical: 5}
    ),
}
FREQUENCY_DAYS: Weighted[int] = Weighted(
    {7: 1, 14: 2, 30: 6, 60: 4, 90: 4, 180: 2, 365: 1}
)
EVENT_TYPES: Weighted[str] = Weighted(
    {EVENT_TYPE.maintenance: 50, EVENT_TYPE.error: 30, EVENT_TYPE.inspection: 20}
)
DURATION_HOURS = (1, 2, 2, 3, 4, 4, 6, 8)

#: How far back completed work goes and how far ahead open work is planned.
HISTORY_DAYS = 365
PLANNING_DAYS = 42
OVERDUE_DAYS = 30


@dataclass(frozen=True)
class Request:
    """The size and anchor of a generated data set."""

    locations: int
    equipment: int
    activities: int
    schedules: int
    events: int
    seed: int
    today: datetime.date

    def check(self) -> None:
        """Raise ValueError, saying how to fix it, for a request that cannot be met."""
        for option in ("locations", "equipment", "activities", "schedules", "events"):
            value = getattr(self, option)
            if value < 1:
                raise ValueError(
                    f"--{option} {value} is not a positive number of rows; "
                    f"pass 1 or more, for example --{option} 100"
                )
        if self.locations > self.equipment:
            raise ValueError(
                f"--locations {self.locations} is more than --equipment "
                f"{self.equipment}, but every location needs equipment; lower "
                "--locations or raise --equipment"
            )


@dataclass(frozen=True, slots=True)
class _Machine:
    code: str
    name: str


def plan_generated(request: Request, zone: datetime.tzinfo) -> Plan:
    """Return the rows of the data set ``request`` describes, times in ``zone``."""
    request.check()
    rng = random.Random(request.seed)
    clock = _Clock(request.today, zone)
    plan = Plan()

    holders = _locations(plan, request.locations)
    machines = _equipment(plan, rng, request, holders)
    schedules = _schedules(plan, rng, request, machines)
    _activities(plan, rng, request, machines, schedules, clock)
    _events(plan, rng, request, machines, clock)

    return plan


class _Clock:
    """Local working times relative to the anchor day."""

    def __init__(self, today: datetime.date, zone: datetime.tzinfo) -> None:
        self.today = today
        self.zone = zone

    def at(self, days: int, hour: int, minute: int = 0) -> datetime.datetime:
        day = self.today + datetime.timedelta(days=days)
        return datetime.datetime.combine(day, datetime.time(hour, minute), self.zone)


def _locations(plan: Plan, count: int) -> list[str]:
    """Add sites with up to five areas each; return the codes that hold equipment."""
    sites = math.ceil(count / (AREAS_PER_SITE + 1))
    areas = count - sites
    holders = []
    for site in range(sites):
        site_code = f"{CODE_PREFIX}-S{site + 1:03d}"
        site_name = f"Plant {site + 1:03d}"
        plan.locations.append(LocationRow(site_code, site_name))
        # The first sites take one area more when they do not divide evenly.
        area_count = areas // sites + (1 if site < areas % sites else 0)
        for letter in AREA_LETTERS[:area_count]:
            area_code = f"{site_code}-{letter}"
            plan.locations.append(
                LocationRow(area_code, f"{site_name} / Area {letter}", site_code)
            )
            holders.append(area_code)
        if not area_count:
            holders.append(site_code)
    return holders


def _equipment(
    plan: Plan, rng: random.Random, request: Request, holders: list[str]
) -> list[_Machine]:
    # Every location gets one piece first; the rest go by uneven weights, as
    # some areas of a plant hold far more machines than others.
    weights = Weighted({code: rng.uniform(0.5, 2.0) for code in holders})
    machines = []
    for index in range(request.equipment):
        number = index + 1
        category = rng.choice(CATEGORIES)
        machine = _Machine(f"{CODE_PREFIX}-{number:05d}", f"{category} {number:05d}")
        plan.equipment.append(
            EquipmentRow(
                code=machine.code,
                name=machine.name,
                location_code=(
                    holders[index] if index < len(holders) else weights.draw(rng)
                ),
                category=category,
                status=EQUIPMENT_STATUS.draw(rng),
                commissioned_on=request.today
                - datetime.timedelta(days=rng.randint(180, 25 * 365)),
            )
        )
        machines.append(machine)
    return machines


def _schedules(
    plan: Plan, rng: random.Random, request: Request, machines: list[_Machine]
) -> dict[int, list[ScheduleRow]]:
    """Add the schedules, the first one per machine; return them by machine index."""
    by_machine: dict[int, list[ScheduleRow]] = {}
    for index in range(request.schedules):
        machine_index = index if index < len(machines) else rng.randrange(len(machines))
        machine = machines[machine_index]
        activity_type = (
            ACTIVITY_TYPE.inspection if rng.random() < 0.2 else ACTIVITY_TYPE.preventive
        )
        frequency = FREQUENCY_DAYS.draw(rng)
        schedule = ScheduleRow(
            ref=f"{REF_PREFIX}:schedule:{index + 1}",
            title=f"{rng.choice(TASKS[activity_type])} on {machine.name}",
            equipment_code=machine.code,
            activity_type=activity_type,
            frequency_days=frequency,
            # A third of a cycle back leaves some schedules past due.
            next_due_date=request.today
            + datetime.timedelta(days=rng.randint(-(frequency // 3), frequency)),
            is_active=rng.random() < 0.95,
        )
        plan.schedules.append(schedule)
        by_machine.setdefault(machine_index, []).append(schedule)
    return by_machine


def _activities(
    plan: Plan,
    rng: random.Random,
    request: Request,
    machines: list[_Machine],
    schedules: dict[int, list[ScheduleRow]],
    clock: _Clock,
) -> None:
    planned: set[tuple[str, datetime.datetime]] = set()
    for index in range(request.activities):
        machine_index = rng.randrange(len(machines))
        activity_type = ACTIVITY_TYPES.draw(rng)
        schedule = None
        # Most planned work on a machine with schedules comes from one of them.
        if (
            activity_type != ACTIVITY_TYPE.corrective
            and machine_index in schedules
            and rng.random() < 0.7
        ):
            schedule = rng.choice(schedules[machine_index])
            activity_type = schedule.activity_type
        title = rng.choice(TASKS[activity_type])
        priority = PRIORITIES.get(activity_type, PRIORITIES["planned"]).draw(rng)
        status = ACTIVITY_STATUS.draw(rng)

        start, end, actual_start, actual_end = _times(rng, status, clock)
        # A schedule has one activity per start time (a unique constraint), so
        # an activity that would be its second one at that time stays unlinked.
        if schedule is not None:
            if (schedule.ref, start) in planned:
                schedule = None
            else:
                planned.add((schedule.ref, start))

        plan.activities.append(
            ActivityRow(
                ref=f"{REF_PREFIX}:activity:{index + 1}",
                title=title,
                equipment_code=machines[machine_index].code,
                activity_type=activity_type,
                status=status,
                priority=priority,
                scheduled_start=start,
                scheduled_end=end,
                actual_start=actual_start,
                actual_end=actual_end,
                schedule_ref=schedule.ref if schedule else None,
            )
        )


def _times(
    rng: random.Random, status: str, clock: _Clock
) -> tuple[
    datetime.datetime,
    datetime.datetime,
    datetime.datetime | None,
    datetime.datetime | None,
]:
    """Planned and actual times that fit ``status`` at any hour of the anchor day."""
    hour, minute = rng.randint(6, 16), rng.choice((0, 15, 30, 45))
    duration = datetime.timedelta(hours=rng.choice(DURATION_HOURS))

    if status == STATUS.completed:
        start = clock.at(-rng.randint(2, HISTORY_DAYS), hour, minute)
        actual_start = start + datetime.timedelta(minutes=5 * rng.randint(-6, 18))
        actual_end = actual_start + duration * rng.choice((0.75, 1, 1, 1.25, 1.5))
        return start, start + duration, actual_start, actual_end
    if status == STATUS.in_progress:
        # Started before the anchor day and ends after it, so "now" is inside.
        start = clock.at(-rng.randint(1, 3), hour, minute)
        end = clock.at(rng.randint(1, 3), hour, minute)
        return start, end, start, None
    if status == STATUS.overdue:
        start = clock.at(-rng.randint(1, OVERDUE_DAYS), hour, minute)
        return start, start + duration, None, None
    if status == STATUS.cancelled:
        start = clock.at(rng.randint(-HISTORY_DAYS // 2, PLANNING_DAYS), hour, minute)
        return start, start + duration, None, None
    start = clock.at(rng.randint(1, PLANNING_DAYS), hour, minute)
    return start, start + duration, None, None


def _events(
    plan: Plan,
    rng: random.Random,
    request: Request,
    machines: list[_Machine],
    clock: _Clock,
) -> None:
    names = {machine.code: machine.name for machine in machines}
    kinds = [EVENT_TYPES.draw(rng) for _ in range(request.events)]
    # Each maintenance event belongs to its own activity; past the number of
    # activities, the rest become inspections.
    linked = iter(
        rng.sample(
            range(len(plan.activities)),
            min(kinds.count(EVENT_TYPE.maintenance), len(plan.activities)),
        )
    )

    for index, kind in enumerate(kinds):
        ref = f"{REF_PREFIX}:event:{index + 1}"
        activity_index = next(linked, None) if kind == EVENT_TYPE.maintenance else None
        if activity_index is not None:
            activity = plan.activities[activity_index]
            plan.events.append(
                EventRow(
                    ref=ref,
                    title=f"{activity.title} on {names[activity.equipment_code]}",
                    event_type=EVENT_TYPE.maintenance,
                    event_date=activity.scheduled_start,
                    equipment_code=activity.equipment_code,
                    activity_ref=activity.ref,
                    is_completed=activity.status
                    in (STATUS.completed, STATUS.cancelled),
                )
            )
            continue

        machine = rng.choice(machines)
        if kind == EVENT_TYPE.error:
            event_type = EVENT_TYPE.error
            when = clock.at(-rng.randint(1, 90), rng.randint(0, 23), rng.randint(0, 59))
            title = f"{rng.choice(ERRORS)} on {machine.name}"
            is_completed = rng.random() < 0.85
        else:
            event_type = EVENT_TYPE.inspection
            days = rng.randint(-60, 60)
            when = clock.at(days, rng.randint(8, 15))
            title = f"{rng.choice(TASKS[ACTIVITY_TYPE.inspection])} of {machine.name}"
            is_completed = days < 0 and rng.random() < 0.9
        plan.events.append(
            EventRow(
                ref=ref,
                title=title,
                event_type=event_type,
                event_date=when,
                equipment_code=machine.code,
                activity_ref=None,
                is_completed=is_completed,
            )
        )
