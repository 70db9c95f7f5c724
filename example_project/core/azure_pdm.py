"""Read the Azure predictive-maintenance data set and map it onto the example site.

The data set (Microsoft, CC BY 4.0) has machines, component replacements,
failures and errors, but no locations, no statuses, no future work and dates
from 2014-2016. :func:`read_data_set` reads and checks the four CSV files;
:func:`plan_import` derives what the data lacks, as ``docs/example_data.rst``
describes, and returns the rows to write.
"""

from __future__ import annotations

import csv
import datetime
import itertools
import logging
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

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

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)

REF_PREFIX = "azure-pdm"
FILES = ("machines.csv", "maint.csv", "failures.csv", "errors.csv")
COMPONENTS = ("comp1", "comp2", "comp3", "comp4")
ERROR_ID = re.compile(r"error[1-9][0-9]*")
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")
MAX_AGE_YEARS = 150

SITES = 10
AREAS_PER_SITE = 5
AREA_LETTERS = "ABCDE"
MACHINES_PER_AREA = 20

#: A machine whose latest error is this recent and not followed by a
#: replacement is still being worked on when the data set ends.
IN_MAINTENANCE_WINDOW = datetime.timedelta(days=7)
REPLACEMENT_HOURS = 2
REPAIR_HOURS = 6
#: Replacements follow a 15-day inspection grid, so inferred frequencies do too.
SCHEDULE_GRID_DAYS = 15

STATUS = MaintenanceActivity.STATUS
PRIORITY = MaintenanceActivity.PRIORITY
ACTIVITY_TYPE = MaintenanceActivity.ACTIVITY_TYPE


class InvalidDataSet(ValueError):
    """A data set file is missing or holds a value the import cannot use."""


class Machine(NamedTuple):
    machine_id: int
    model: str
    age: int


class Record(NamedTuple):
    """One dated row of maint.csv, failures.csv or errors.csv."""

    when: datetime.datetime
    machine_id: int
    kind: str


@dataclass(frozen=True)
class DataSet:
    machines: dict[int, Machine]
    replacements: list[Record]
    failures: list[Record]
    errors: list[Record]

    @property
    def newest(self) -> datetime.datetime:
        return max(
            record.when
            for records in (self.replacements, self.failures, self.errors)
            for record in records
        )


@dataclass(frozen=True)
class ImportPlan:
    plan: Plan
    shift: datetime.timedelta
    now: datetime.datetime
    in_maintenance: int
    planned_overdue: int


def read_data_set(folder: Path) -> DataSet:
    """Read and check all four files; raise InvalidDataSet at the first problem."""
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise InvalidDataSet(
            f"the folder {str(folder)!r} {problem}; pass the folder that holds "
            f"{', '.join(FILES)} (the Azure predictive-maintenance data set)"
        )
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise InvalidDataSet(
            f"{', '.join(missing)} not found in {str(folder)!r}; the folder "
            f"must hold all of {', '.join(FILES)}"
        )

    machines = _read_machines(folder)
    data = DataSet(
        machines=machines,
        replacements=_read_records(folder, "maint.csv", "comp", machines),
        failures=_read_records(folder, "failures.csv", "failure", machines),
        errors=_read_records(folder, "errors.csv", "errorID", machines),
    )

    if not (data.replacements or data.failures or data.errors):
        raise InvalidDataSet(
            "maint.csv, failures.csv and errors.csv hold no rows, so there is "
            "nothing to date the import by"
        )
    return data


def _read_rows(
    folder: Path, name: str, columns: tuple[str, ...]
) -> list[tuple[int, list[str]]]:
    """Return (line number, values of ``columns``) for every data row of a file."""
    rows = []
    with (folder / name).open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        try:
            header = next(reader, None)
            if header is None:
                raise InvalidDataSet(
                    f"{name} line 1: the file is empty; "
                    f"expected the header {','.join(columns)}"
                )
            positions = [_column_position(name, header, column) for column in columns]
            for values in reader:
                if not values:
                    continue
                if len(values) != len(header):
                    raise InvalidDataSet(
                        f"{name} line {reader.line_num}: {len(values)} values "
                        f"where the header names {len(header)} columns"
                    )
                rows.append((reader.line_num, [values[p] for p in positions]))
        except csv.Error as error:
            raise InvalidDataSet(f"{name} line {reader.line_num}: {error}") from error
        except UnicodeDecodeError as error:
            raise InvalidDataSet(
                f"{name} line {reader.line_num + 1}: not UTF-8 text ({error.reason})"
            ) from error
    return rows


def _column_position(name: str, header: list[str], column: str) -> int:
    try:
        return header.index(column)
    except ValueError:
        raise InvalidDataSet(
            f"{name} line 1: column {column!r} is missing "
            f"(the header has {', '.join(header)})"
        ) from None


def _read_machines(folder: Path) -> dict[int, Machine]:
    machines: dict[int, Machine] = {}
    lines: dict[int, int] = {}
    for line, (machine_text, model_text, age_text) in _read_rows(
        folder, "machines.csv", ("machineID", "model", "age")
    ):
        where = f"machines.csv line {line}"
        machine_id = _whole_number(machine_text, "machineID", where)
        if machine_id < 1:
            raise InvalidDataSet(f"{where}: machineID {machine_id} is not positive")
        if machine_id in machines:
            raise InvalidDataSet(
                f"{where}: machineID {machine_id} repeats line {lines[machine_id]}"
            )
        model = model_text.strip()
        if not model or len(model) > 100:
            raise InvalidDataSet(
                f"{where}: model {model_text!r} is not 1-100 characters"
            )
        age = _whole_number(age_text, "age", where)
        if not 0 <= age <= MAX_AGE_YEARS:
            raise InvalidDataSet(
                f"{where}: age {age} is not between 0 and {MAX_AGE_YEARS} years"
            )
        machines[machine_id] = Machine(machine_id, model, age)
        lines[machine_id] = line

    if not machines:
        raise InvalidDataSet("machines.csv line 2: the file has no machines")
    return machines


def _read_records(
    folder: Path, name: str, kind_column: str, machines: dict[int, Machine]
) -> list[Record]:
    records = []
    lines: dict[Record, int] = {}
    for line, (when_text, machine_text, kind_text) in _read_rows(
        folder, name, ("datetime", "machineID", kind_column)
    ):
        where = f"{name} line {line}"
        when = _on_the_hour(when_text, where)
        machine_id = _whole_number(machine_text, "machineID", where)
        if machine_id not in machines:
            raise InvalidDataSet(
                f"{where}: machineID {machine_id} is not in machines.csv"
            )
        kind = kind_text.strip()
        _check_kind(kind, kind_column, where)
        record = Record(when, machine_id, kind)
        if record in lines:
            raise InvalidDataSet(
                f"{where}: repeats line {lines[record]} "
                f"(same datetime, machineID and {kind_column})"
            )
        lines[record] = line
        records.append(record)
    return records


def _whole_number(text: str, column: str, where: str) -> int:
    if not WHOLE_NUMBER.fullmatch(text.strip()):
        raise InvalidDataSet(f"{where}: {column} {text!r} is not a whole number")
    return int(text)


def _on_the_hour(text: str, where: str) -> datetime.datetime:
    """Parse a naive UTC date and time; the data set's resolution is one hour."""
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidDataSet(
            f"{where}: datetime {text!r} is not a date and time "
            "like 2015-01-01 06:00:00"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    if when.minute or when.second or when.microsecond:
        raise InvalidDataSet(
            f"{where}: datetime {text!r} is not on the hour (the data set is hourly)"
        )
    return when


def _check_kind(kind: str, column: str, where: str) -> None:
    if column == "errorID":
        if not ERROR_ID.fullmatch(kind):
            raise InvalidDataSet(
                f"{where}: errorID {kind!r} is not an error code like error1"
            )
    elif kind not in COMPONENTS:
        raise InvalidDataSet(
            f"{where}: {column} {kind!r} is not one of {', '.join(COMPONENTS)}"
        )


def plan_import(data: DataSet, today: datetime.date) -> ImportPlan:
    """Map the data set onto the example site's models, shifted to end on ``today``.

    Raises OverflowError when ``today`` moves a date past the calendar's range.
    """
    newest = data.newest
    shift = datetime.timedelta(days=(today - newest.date()).days)
    now = _aware(newest + shift)

    last_replacement: dict[int, datetime.datetime] = {}
    replacement_times: dict[tuple[int, str], list[datetime.datetime]] = defaultdict(
        list
    )
    for record in data.replacements:
        replacement_times[record.machine_id, record.kind].append(record.when)
        previous = last_replacement.get(record.machine_id)
        if previous is None or record.when > previous:
            last_replacement[record.machine_id] = record.when

    plan = Plan(locations=_locations())
    plan.equipment, in_maintenance = _equipment(data, newest, last_replacement, today)
    plan.activities = _historical_activities(data, shift)
    planned_overdue = _schedules(plan, replacement_times, shift, now)
    plan.events.extend(_error_events(data, shift, last_replacement))

    return ImportPlan(plan, shift, now, in_maintenance, planned_overdue)


def _aware(when: datetime.datetime) -> datetime.datetime:
    return when.replace(tzinfo=datetime.timezone.utc)


def _hour_ref(when: datetime.datetime) -> str:
    return when.isoformat(timespec="hours")


def _machine_name(machine_id: int) -> str:
    return f"Machine {machine_id:04d}"


def _machine_code(machine_id: int) -> str:
    return f"AZ-{machine_id:04d}"


def _area_code(machine_id: int) -> str:
    """The area of a machine: 20 machines per area, in site order.

    Machine IDs past 1,000 (not in the published data) wrap around to the
    first area again, so every machine has a place.
    """
    area = (machine_id - 1) // MACHINES_PER_AREA % (SITES * AREAS_PER_SITE)
    site, letter = divmod(area, AREAS_PER_SITE)
    return f"S{site + 1:02d}-{AREA_LETTERS[letter]}"


def _locations() -> list[LocationRow]:
    rows = []
    for site in range(1, SITES + 1):
        site_code, site_name = f"S{site:02d}", f"Site {site:02d}"
        rows.append(LocationRow(site_code, site_name))
        rows.extend(
            LocationRow(
                f"{site_code}-{letter}", f"{site_name} / Area {letter}", site_code
            )
            for letter in AREA_LETTERS[:AREAS_PER_SITE]
        )
    return rows


def _equipment(
    data: DataSet,
    newest: datetime.datetime,
    last_replacement: dict[int, datetime.datetime],
    today: datetime.date,
) -> tuple[list[EquipmentRow], int]:
    last_error: dict[int, datetime.datetime] = {}
    for record in data.errors:
        if record.when > last_error.get(record.machine_id, datetime.datetime.min):
            last_error[record.machine_id] = record.when
    in_maintenance = {
        machine_id
        for machine_id, when in last_error.items()
        if when >= newest - IN_MAINTENANCE_WINDOW
        and last_replacement.get(machine_id, datetime.datetime.min) <= when
    }

    rows = [
        EquipmentRow(
            code=_machine_code(machine.machine_id),
            name=_machine_name(machine.machine_id),
            location_code=_area_code(machine.machine_id),
            category=machine.model,
            status=(
                Equipment.STATUS.in_maintenance
                if machine.machine_id in in_maintenance
                else Equipment.STATUS.operational
            ),
            commissioned_on=_years_before(today, machine.age),
        )
        for machine in sorted(data.machines.values())
    ]
    return rows, len(in_maintenance)


def _years_before(day: datetime.date, years: int) -> datetime.date:
    if day.year - years < datetime.MINYEAR:
        raise OverflowError(f"{years} years before {day} is before year 1")
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        # 29 February in a year that has none.
        return day.replace(year=day.year - years, day=28)


def _historical_activities(
    data: DataSet, shift: datetime.timedelta
) -> list[ActivityRow]:
    failures = set(data.failures)
    replacements = set(data.replacements)
    rows = [
        _done(record, "maint", shift, repair=record in failures)
        for record in data.replacements
    ]
    rows.extend(
        _done(record, "failure", shift, repair=True)
        for record in data.failures
        if record not in replacements
    )
    return rows


def _done(
    record: Record, source: str, shift: datetime.timedelta, *, repair: bool
) -> ActivityRow:
    start = _aware(record.when + shift)
    end = start + datetime.timedelta(
        hours=REPAIR_HOURS if repair else REPLACEMENT_HOURS
    )
    key = f"{record.machine_id}:{record.kind}:{_hour_ref(record.when)}"
    return ActivityRow(
        ref=f"{REF_PREFIX}:{source}:{key}",
        title=(
            f"Repair {record.kind} after failure"
            if repair
            else f"Replace {record.kind}"
        ),
        equipment_code=_machine_code(record.machine_id),
        activity_type=ACTIVITY_TYPE.corrective if repair else ACTIVITY_TYPE.preventive,
        status=STATUS.completed,
        priority=PRIORITY.high if repair else PRIORITY.medium,
        scheduled_start=start,
        scheduled_end=end,
        actual_start=start,
        actual_end=end,
    )


def _frequency_days(times: list[datetime.datetime]) -> int:
    """The median gap between replacements, to the nearest 15 days (halves up)."""
    ordered = sorted(times)
    gaps = [
        (later - earlier).total_seconds() / 86400
        for earlier, later in itertools.pairwise(ordered)
    ]
    steps = math.floor(statistics.median(gaps) / SCHEDULE_GRID_DAYS + 0.5)
    return max(1, steps) * SCHEDULE_GRID_DAYS


def _schedules(
    plan: Plan,
    replacement_times: dict[tuple[int, str], list[datetime.datetime]],
    shift: datetime.timedelta,
    now: datetime.datetime,
) -> int:
    """Add a schedule, its next activity and that activity's event per component."""
    overdue = 0
    for (machine_id, component), times in sorted(replacement_times.items()):
        if len(times) < 2:
            continue
        frequency = _frequency_days(times)
        due = max(times) + datetime.timedelta(days=frequency)
        start = _aware(due + shift)
        end = start + datetime.timedelta(hours=REPLACEMENT_HOURS)
        status = STATUS.scheduled if end > now else STATUS.overdue
        if status == STATUS.overdue:
            overdue += 1

        key = f"{machine_id}:{component}"
        schedule_ref = f"{REF_PREFIX}:schedule:{key}"
        activity_ref = f"{REF_PREFIX}:planned:{key}:{_hour_ref(due)}"
        title = f"Replace {component} on {_machine_name(machine_id)}"
        plan.schedules.append(
            ScheduleRow(
                ref=schedule_ref,
                title=title,
                equipment_code=_machine_code(machine_id),
                activity_type=ACTIVITY_TYPE.preventive,
                frequency_days=frequency,
                # The planned activity below covers this due date; the
                # schedule's next one is a cycle later.
                next_due_date=(start + datetime.timedelta(days=frequency)).date(),
            )
        )
        plan.activities.append(
            ActivityRow(
                ref=activity_ref,
                title=f"Replace {component}",
                equipment_code=_machine_code(machine_id),
                activity_type=ACTIVITY_TYPE.preventive,
                status=status,
                priority=PRIORITY.medium,
                scheduled_start=start,
                scheduled_end=end,
                schedule_ref=schedule_ref,
            )
        )
        plan.events.append(
            EventRow(
                ref=f"{REF_PREFIX}:planned-event:{key}:{_hour_ref(due)}",
                title=title,
                event_type=CalendarEvent.EVENT_TYPE.maintenance,
                event_date=start,
                equipment_code=_machine_code(machine_id),
                activity_ref=activity_ref,
                is_completed=False,
            )
        )
    return overdue


def _error_events(
    data: DataSet,
    shift: datetime.timedelta,
    last_replacement: dict[int, datetime.datetime],
) -> list[EventRow]:
    events = []
    for record in data.errors:
        replaced = last_replacement.get(record.machine_id)
        key = f"{record.machine_id}:{record.kind}:{_hour_ref(record.when)}"
        events.append(
            EventRow(
                ref=f"{REF_PREFIX}:error:{key}",
                title=f"{record.kind} on {_machine_name(record.machine_id)}",
                event_type=CalendarEvent.EVENT_TYPE.error,
                event_date=_aware(record.when + shift),
                equipment_code=_machine_code(record.machine_id),
                activity_ref=None,
                # A replacement after the error is taken as the fix for it.
                is_completed=replaced is not None and replaced > record.when,
            )
        )
    return events
