"""Write a prepared data set into the example site's tables, fast and once.

Both data commands (``import_azure_pdm`` and ``generate_maintenance_data``)
describe what they want as a :class:`Plan` of plain rows that name each other
by code or external reference. :func:`load_plan` writes the rows that are not
in the database yet, with batched ``bulk_create`` calls inside one
transaction, and reports per table how many it created and skipped.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models, transaction
from tqdm import tqdm

from core.models import Location
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity, MaintenanceSchedule
from maintenance_perf.cache import invalidate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from django.core.management.base import OutputWrapper

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 2000
MODELS = (Location, Equipment, MaintenanceSchedule, MaintenanceActivity, CalendarEvent)

Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class LocationRow:
    code: str
    name: str
    parent_code: str | None = None


@dataclass(frozen=True, slots=True)
class EquipmentRow:
    code: str
    name: str
    location_code: str
    category: str
    status: str
    commissioned_on: datetime.date | None


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    ref: str
    title: str
    equipment_code: str
    activity_type: str
    frequency_days: int
    next_due_date: datetime.date
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class ActivityRow:
    ref: str
    title: str
    equipment_code: str
    activity_type: str
    status: str
    priority: int
    scheduled_start: datetime.datetime
    scheduled_end: datetime.datetime
    actual_start: datetime.datetime | None = None
    actual_end: datetime.datetime | None = None
    schedule_ref: str | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    ref: str
    title: str
    event_type: str
    event_date: datetime.datetime
    equipment_code: str | None
    activity_ref: str | None
    is_completed: bool


@dataclass
class Plan:
    """Every row a data set consists of; rows refer to each other by key."""

    locations: list[LocationRow] = field(default_factory=list)
    equipment: list[EquipmentRow] = field(default_factory=list)
    schedules: list[ScheduleRow] = field(default_factory=list)
    activities: list[ActivityRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)


@dataclass(frozen=True)
class TableResult:
    label: str
    created: int
    skipped: int

    def __str__(self) -> str:
        return f"{self.label}: {self.created:,} created, {self.skipped:,} skipped"


class ProgressStream:
    """A command's stderr as tqdm needs it: partial lines, no colour."""

    def __init__(self, output: OutputWrapper) -> None:
        self._output = output

    def write(self, text: str) -> None:
        self._output.write(text, style_func=_unstyled, ending="")

    def flush(self) -> None:
        self._output.flush()


def _unstyled(text: str) -> str:
    return text


def parse_today(
    value: str | datetime.date | None, default: datetime.date
) -> datetime.date:
    """Return the ``--today`` option as a date, or ``default`` when it is not given."""
    if value is None:
        return default
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--today {value!r} is not a date; write it as YYYY-MM-DD, "
            "for example --today 2025-01-31"
        ) from None


def load_plan(
    plan: Plan, *, batch_size: int, progress: ProgressStream | None
) -> list[TableResult]:
    """Create the plan's rows that do not exist yet, all or nothing."""
    with transaction.atomic():
        results = [
            _load_locations(plan.locations, batch_size, progress),
            _load_equipment(plan.equipment, batch_size, progress),
            _load_schedules(plan.schedules, batch_size, progress),
            _load_activities(plan.activities, batch_size, progress),
            _load_events(plan.events, batch_size, progress),
        ]

        # bulk_create sends no signals, so cached dashboards learn of the new
        # rows here, once the transaction commits.
        if any(result.created for result in results):
            invalidate(*MODELS)

    return results


def _load_locations(
    rows: list[LocationRow], batch_size: int, progress: ProgressStream | None
) -> TableResult:
    label = "Locations"
    existing = _existing_keys(Location, "code", [row.code for row in rows])
    missing = [row for row in rows if row.code not in existing]

    # Areas point at their site, so sites go in first and areas after them.
    with _progress_bar(label, len(missing), progress) as bar:
        sites = [row for row in missing if row.parent_code is None]
        _create(Location, (_location(row, None) for row in sites), batch_size, bar)
        areas = [row for row in missing if row.parent_code is not None]
        site_ids = _id_map(
            Location, "code", [row.parent_code for row in areas if row.parent_code]
        )
        _create(
            Location,
            (_location(row, _resolve(site_ids, row.parent_code, row)) for row in areas),
            batch_size,
            bar,
        )

    return TableResult(label, len(missing), len(rows) - len(missing))


def _location(row: LocationRow, parent_id: int | None) -> Location:
    return Location(code=row.code, name=row.name, parent_id=parent_id)


def _load_equipment(
    rows: list[EquipmentRow], batch_size: int, progress: ProgressStream | None
) -> TableResult:
    location_ids = _id_map(Location, "code", [row.location_code for row in rows])
    return _load_table(
        "Equipment",
        Equipment,
        "code",
        rows,
        lambda row: row.code,
        lambda row: Equipment(
            code=row.code,
            name=row.name,
            location_id=_resolve(location_ids, row.location_code, row),
            category=row.category,
            status=row.status,
            commissioned_on=row.commissioned_on,
        ),
        batch_size,
        progress,
    )


def _load_schedules(
    rows: list[ScheduleRow], batch_size: int, progress: ProgressStream | None
) -> TableResult:
    equipment_ids = _id_map(Equipment, "code", [row.equipment_code for row in rows])
    return _load_table(
        "Maintenance schedules",
        MaintenanceSchedule,
        "external_ref",
        rows,
        lambda row: row.ref,
        lambda row: MaintenanceSchedule(
            external_ref=row.ref,
            title=row.title,
            equipment_id=_resolve(equipment_ids, row.equipment_code, row),
            activity_type=row.activity_type,
            frequency_days=row.frequency_days,
            next_due_date=row.next_due_date,
            is_active=row.is_active,
        ),
        batch_size,
        progress,
    )


def _load_activities(
    rows: list[ActivityRow], batch_size: int, progress: ProgressStream | None
) -> TableResult:
    equipment_ids = _id_map(Equipment, "code", [row.equipment_code for row in rows])
    schedule_ids = _id_map(
        MaintenanceSchedule,
        "external_ref",
        [row.schedule_ref for row in rows if row.schedule_ref is not None],
    )
    return _load_table(
        "Maintenance activities",
        MaintenanceActivity,
        "external_ref",
        rows,
        lambda row: row.ref,
        lambda row: MaintenanceActivity(
            external_ref=row.ref,
            title=row.title,
            equipment_id=_resolve(equipment_ids, row.equipment_code, row),
            schedule_id=_resolve(schedule_ids, row.schedule_ref, row),
            activity_type=row.activity_type,
            status=row.status,
            priority=row.priority,
            scheduled_start=row.scheduled_start,
            scheduled_end=row.scheduled_end,
            actual_start=row.actual_start,
            actual_end=row.actual_end,
        ),
        batch_size,
        progress,
    )


def _load_events(
    rows: list[EventRow], batch_size: int, progress: ProgressStream | None
) -> TableResult:
    equipment_ids = _id_map(
        Equipment,
        "code",
        [row.equipment_code for row in rows if row.equipment_code is not None],
    )
    activity_ids = _id_map(
        MaintenanceActivity,
        "external_ref",
        [row.activity_ref for row in rows if row.activity_ref is not None],
    )
    return _load_table(
        "Calendar events",
        CalendarEvent,
        "external_ref",
        rows,
        lambda row: row.ref,
        lambda row: CalendarEvent(
            external_ref=row.ref,
            title=row.title,
            event_type=row.event_type,
            event_date=row.event_date,
            equipment_id=_resolve(equipment_ids, row.equipment_code, row),
            activity_id=_resolve(activity_ids, row.activity_ref, row),
            is_completed=row.is_completed,
        ),
        batch_size,
        progress,
    )


def _load_table(
    label: str,
    model: type[models.Model],
    key_field: str,
    rows: Sequence[Row],
    key: Callable[[Row], str],
    build: Callable[[Row], models.Model],
    batch_size: int,
    progress: ProgressStream | None,
) -> TableResult:
    existing = _existing_keys(model, key_field, [key(row) for row in rows])
    missing = [row for row in rows if key(row) not in existing]

    with _progress_bar(label, len(missing), progress) as bar:
        _create(model, (build(row) for row in missing), batch_size, bar)

    return TableResult(label, len(missing), len(rows) - len(missing))


def _existing_keys(
    model: type[models.Model], key_field: str, keys: list[str]
) -> set[str]:
    return set(_id_map(model, key_field, keys))


def _id_map(
    model: type[models.Model], key_field: str, keys: list[str]
) -> dict[str, int]:
    """Map each key of ``model`` rows that start like ``keys`` to its primary key."""
    if not keys:
        return {}

    # A prefix match reads a few rows too many but needs one parameter, where
    # ``key__in`` would pass thousands and hit SQLite's variable limit.
    prefix = _common_prefix(keys)
    return dict(
        model._default_manager.filter(**{f"{key_field}__startswith": prefix})
        .order_by()
        .values_list(key_field, "pk")
    )


def _common_prefix(keys: list[str]) -> str:
    # The smallest and largest key share exactly the prefix all keys share.
    first, last = min(keys), max(keys)
    for position, (left, right) in enumerate(zip(first, last, strict=False)):
        if left != right:
            return first[:position]
    return first


def _resolve(ids: dict[str, int], key: str | None, row: object) -> int | None:
    if key is None:
        return None
    try:
        return ids[key]
    except KeyError:
        raise LookupError(
            f"{row!r} refers to {key!r}, which neither the plan nor the database holds"
        ) from None


def _create(
    model: type[models.Model],
    instances: Iterable[models.Model],
    batch_size: int,
    bar: tqdm[Any],
) -> None:
    for batch in _batches(instances, batch_size):
        model._default_manager.bulk_create(batch, batch_size=batch_size)
        bar.update(len(batch))


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress_bar(label: str, total: int, progress: ProgressStream | None) -> tqdm[Any]:
    return tqdm(
        total=total,
        desc=label,
        unit=" rows",
        file=progress,
        disable=progress is None,
    )
