"""The maintenance tasks as plain functions, each a few set-based queries.

They work on the host's models (``MODELS``) through its field names and
status values (``FIELDS``), write with bulk inserts and single UPDATEs, and
never need one query per schedule or activity. :func:`run_task` runs one of
them the way a worker does: under its lock, logging one line.

Bulk writes send no model signals and skip ``save()``, so the functions
invalidate the dashboard cache themselves, once, when they changed rows.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import string
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import (
    NotSupportedError,
    OperationalError,
    connections,
    models,
    router,
    transaction,
)
from django.db.models.functions import Coalesce, Greatest
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from maintenance_perf.cache import invalidate
from maintenance_perf.check_messages import error as _error
from maintenance_perf.check_messages import warning as _warning
from maintenance_perf.conf import (
    BEAT_ENTRY_DEFAULTS,
    DEFAULT_FIELDS,
    SETTING_NAME,
    conf,
)
from maintenance_perf.locks import LockUnavailable, TaskLock
from maintenance_perf.schedule import MAX_DAYS_AHEAD

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from django.core import checks
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

logger = logging.getLogger(__name__)

#: Rows per INSERT statement, at most; SQLite's parameter limit may cut it.
DEFAULT_BATCH_SIZE = 1000
#: Days ahead of today a schedule's next activity is created.
DEFAULT_ADVANCE_DAYS = 7
#: Days ahead of now that calendar events are created for activities.
DEFAULT_DAYS_AHEAD = 14

#: Fields a task cannot do without, by role; every other one may be ``None``.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "schedule": ("frequency_days", "next_due_date"),
    "activity": ("schedule", "status", "scheduled_start", "scheduled_end"),
    "event": ("activity", "event_date"),
    "activity_status": ("scheduled", "overdue"),
    "event_type": (),
}

#: Groups of ``FIELDS`` that hold values of a field rather than field names.
VALUE_GROUPS: dict[str, tuple[str, str]] = {
    "activity_status": ("activity", "status"),
    "event_type": ("event", "event_type"),
}

#: The field class each mapped field must be (or subclass), where it matters.
FIELD_TYPES: dict[tuple[str, str], type[models.Field[Any, Any]]] = {
    ("schedule", "frequency_days"): models.IntegerField,
    ("schedule", "next_due_date"): models.DateField,
    ("schedule", "advance_days"): models.IntegerField,
    ("schedule", "is_active"): models.BooleanField,
    ("activity", "scheduled_start"): models.DateTimeField,
    ("activity", "scheduled_end"): models.DateField,
    ("event", "event_date"): models.DateTimeField,
    ("event", "is_completed"): models.BooleanField,
}


class GenerateCounts(TypedDict):
    """What :func:`generate_scheduled_maintenance` did."""

    #: Active schedules that were due within their advance window.
    schedules: int
    #: Maintenance activities created.
    created: int
    #: Activities that already existed for a due date, so were not created.
    existing: int


class OverdueCounts(TypedDict):
    """What :func:`check_overdue_maintenance` did."""

    #: Activities marked overdue.
    marked: int


class EventCounts(TypedDict):
    """What :func:`generate_maintenance_events` did."""

    #: Calendar events created, one per upcoming activity that had none.
    created: int


# --- the host's schema ------------------------------------------------------


def _model(role: str) -> type[models.Model]:
    model = conf.get_model(role)
    if model is None:
        raise LookupError(
            f"the maintenance tasks need a {role} model, but "
            f"{SETTING_NAME}['MODELS'][{role!r}] is None"
        )
    return model


def _name(role: str, name: str) -> str | None:
    return conf.fields[role][name]


def _required(role: str, name: str) -> str:
    value = _name(role, name)
    if value is None:
        raise LookupError(
            f"{SETTING_NAME}['FIELDS'][{role!r}][{name!r}] is None, but the "
            "maintenance tasks need it"
        )
    return value


def _attname(model: type[models.Model], name: str) -> str:
    """Return the column attribute (``equipment_id`` for ``equipment``)."""
    return model._meta.get_field(name).attname  # type: ignore[union-attr]


def _is_date_only(model: type[models.Model], name: str) -> bool:
    found = model._meta.get_field(name)
    return isinstance(found, models.DateField) and not isinstance(
        found, models.DateTimeField
    )


def _end_cutoff(
    activity: type[models.Model], end: str, now: datetime.datetime
) -> datetime.date | datetime.datetime:
    """Return what a scheduled end is compared with to tell whether it passed.

    A date-only end passes when its day is over in the project's time zone;
    a date and time passes at that instant.
    """
    if _is_date_only(activity, end):
        return _today(now)
    return now


# --- date arithmetic in SQL -------------------------------------------------


class _DateFunc(models.Func):
    """A date calculation written out for PostgreSQL and SQLite."""

    postgresql_template = ""
    sqlite_template = ""

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        raise NotSupportedError(
            "the maintenance tasks' date arithmetic is written for PostgreSQL and "
            f"SQLite, not {connection.vendor}"
        )

    def _render(
        self, compiler: SQLCompiler, template: str
    ) -> tuple[str, tuple[Any, ...]]:
        compiled = [
            compiler.compile(expression) for expression in self.get_source_expressions()
        ]
        # Parameters follow the order the template uses the parts in.
        order = [
            int(name) for _, name, _, _ in string.Formatter().parse(template) if name
        ]
        params = [param for index in order for param in compiled[index][1]]
        return template.format(*(sql for sql, _ in compiled)), tuple(params)

    def as_postgresql(  # pragma: postgresql only
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        return self._render(compiler, self.postgresql_template)

    def as_sqlite(  # pragma: other databases only
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        return self._render(compiler, self.sqlite_template)


class DaysBetween(_DateFunc):
    """Whole days from the date ``start`` to the date ``end``."""

    output_field = models.IntegerField()
    postgresql_template = "((({1})::date - ({0})::date))"
    sqlite_template = "CAST(julianday({1}) - julianday({0}) AS INTEGER)"

    def __init__(self, start: Any, end: Any) -> None:
        super().__init__(start, end)


class AddDays(_DateFunc):
    """The date ``days`` (a whole number, 0 or more) after ``date``."""

    output_field = models.DateField()
    postgresql_template = "((({0})::date + ({1})::integer))"
    sqlite_template = "date({0}, '+' || ({1}) || ' days')"

    def __init__(self, date: Any, days: Any) -> None:
        super().__init__(date, days)


def next_due_after(
    next_due: Any, frequency_days: Any, today: datetime.date, window_days: Any
) -> AddDays:
    """Return the SQL for the first due date past today's advance window.

    The same date as the second value of :func:`occurrences`, for every row.
    """
    horizon_days = DaysBetween(next_due, models.Value(today)) + window_days
    return AddDays(next_due, frequency_days * (horizon_days / frequency_days + 1))


def occurrences(
    next_due: datetime.date,
    frequency_days: int,
    today: datetime.date,
    window_days: int,
) -> tuple[list[datetime.date], datetime.date]:
    """Return the due dates to plan now and the next due date after them.

    The dates run from ``next_due`` to ``window_days`` after ``today``. A
    schedule that fell behind gets its missed due date once, not one
    activity per missed cycle: the cycles between it and today are skipped.
    """
    horizon = today + datetime.timedelta(days=window_days)
    step = datetime.timedelta(days=frequency_days)
    dates = [next_due] if next_due <= horizon else []

    missed_days = max(0, (today - next_due).days)
    cycles = max(1, -(-missed_days // frequency_days))
    due = next_due + cycles * step
    while due <= horizon:
        dates.append(due)
        due += step
    return dates, due


def _day_span(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """Return local midnight of ``day`` and of the next day, as aware datetimes.

    The span is 23 or 25 hours on the days the clocks change.
    """
    zone = timezone.get_default_timezone()
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
    end = datetime.datetime.combine(
        day + datetime.timedelta(days=1), datetime.time(), tzinfo=zone
    )
    return start, end


#: Schedules named in one UPDATE where the task cannot rely on a snapshot.
UPDATE_BATCH_SIZE = 10_000


@contextlib.contextmanager
def _snapshot(using: str) -> Iterator[bool]:
    """Run the block in a transaction; yield whether it sees one snapshot.

    On PostgreSQL the task's own transaction is REPEATABLE READ, so a
    statement that selects rows by a condition finds the same rows as the
    SELECT before it, even if another transaction commits a newly due
    schedule in between. Inside a caller's transaction the caller's
    isolation level applies, so no snapshot is promised. SQLite lets no
    other writer commit while a transaction holds its read lock.
    """
    connection = connections[using]
    isolated = connection.vendor != "postgresql" or not connection.in_atomic_block
    with transaction.atomic(using=using):
        if isolated and connection.vendor == "postgresql":  # pragma: postgresql only
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield isolated


def _is_serialization_failure(error: OperationalError) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == "40001"


def _in_snapshot(using: str, work: Callable[[bool], Any], what: str) -> Any:
    """Run ``work`` in one snapshot; once more if a concurrent run interfered.

    On PostgreSQL a row that another transaction changed, or inserted with a
    conflicting key, after this snapshot was taken fails the whole
    transaction; a fresh snapshot sees the other run's work and does only
    what is left, so counts stay exact.
    """
    try:
        with _snapshot(using) as isolated:
            return work(isolated)
    except OperationalError as error:
        if not _is_serialization_failure(error):
            raise
    logger.info("%s: a concurrent run changed the same rows; retrying once.", what)
    with _snapshot(using) as isolated:
        return work(isolated)


def _today(now: datetime.datetime) -> datetime.date:
    """Return the date ``now`` falls on in the project's time zone."""
    return timezone.localtime(now, timezone.get_default_timezone()).date()


# --- generate scheduled maintenance ----------------------------------------


def generate_scheduled_maintenance(
    *,
    now: datetime.datetime | None = None,
    advance_days: int = DEFAULT_ADVANCE_DAYS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    using: str | None = None,
) -> GenerateCounts:
    """Create the next activities of every active schedule that is due.

    A schedule is due when its next due date is at most ``advance_days``
    after today (or its own advance field's days, where ``FIELDS`` maps
    one). Each due date becomes an activity spanning that day in the
    project's time zone, and the schedule's next due date moves past the
    window. Activities that already exist for a (schedule, start) pair are
    not created again, so a rerun creates nothing.
    """
    if not 0 <= advance_days <= MAX_DAYS_AHEAD or batch_size < 1:
        raise ValueError(
            f"advance_days must be from 0 to {MAX_DAYS_AHEAD} and batch_size 1 or "
            f"more, not {advance_days} and {batch_size}"
        )
    now = now or timezone.now()
    using = using or router.db_for_write(_model("activity"))

    counts: GenerateCounts = _in_snapshot(
        using,
        lambda isolated: _generate(now, advance_days, batch_size, using, isolated),
        "Generating scheduled maintenance",
    )
    return counts


def _generate(
    now: datetime.datetime,
    advance_days: int,
    batch_size: int,
    using: str,
    isolated: bool,
) -> GenerateCounts:
    schedule, activity = _model("schedule"), _model("activity")
    frequency = _required("schedule", "frequency_days")
    next_due = _required("schedule", "next_due_date")
    advance = _name("schedule", "advance_days")
    today = _today(now)

    window: Any = models.Value(advance_days)
    due: list[Any] = [models.Q(**{f"{frequency}__gte": 1})]
    if advance is None:
        horizon = today + datetime.timedelta(advance_days)
        due.append(models.Q(**{f"{next_due}__lte": horizon}))
    else:
        # A negative window in a row counts as none.
        window = Greatest(
            Coalesce(models.F(advance), window, output_field=models.IntegerField()),
            models.Value(0),
        )
        days_off = DaysBetween(models.Value(today), models.F(next_due))
        due.append(LessThanOrEqual(days_off, window))
    if (active := _name("schedule", "is_active")) is not None:
        due.append(models.Q(**{active: True}))
    schedules = schedule._default_manager.using(using).filter(*due)

    copied = {
        name: _attname(schedule, source)
        for name in ("equipment", "title", "activity_type")
        if (source := _name("schedule", name)) and _name("activity", name)
    }
    columns = ["pk", next_due, frequency, *copied.values()]
    if advance is not None:
        columns.append(advance)
    # Locked in primary-key order, so two runs never wait on each other in a
    # cycle; a concurrent run waits, then retries on a fresh snapshot.
    rows = list(schedules.select_for_update().order_by("pk").values(*columns))
    if not rows:
        return GenerateCounts(schedules=0, created=0, existing=0)

    planned = _plan_activities(rows, copied, today, advance_days)
    existing = _existing_activities(schedules, planned)
    new = [
        planned_activity
        for key, planned_activity in planned.items()
        if key not in existing
    ]
    activity._default_manager.using(using).bulk_create(
        new, batch_size=batch_size, ignore_conflicts=True
    )
    moved = next_due_after(models.F(next_due), models.F(frequency), today, window)
    if isolated:
        schedules.update(**{next_due: moved})
    else:  # pragma: postgresql only
        # Without a snapshot the condition could match a schedule committed
        # since the SELECT, whose activities this run did not create.
        pks = [row["pk"] for row in rows]
        for start in range(0, len(pks), UPDATE_BATCH_SIZE):
            chunk = pks[start : start + UPDATE_BATCH_SIZE]
            schedules.filter(pk__in=chunk).update(**{next_due: moved})

    invalidate("activity", "schedule", using=using)
    return GenerateCounts(
        schedules=len(rows), created=len(new), existing=len(planned) - len(new)
    )


def _plan_activities(
    rows: list[dict[str, Any]],
    copied: dict[str, str],
    today: datetime.date,
    advance_days: int,
) -> dict[tuple[Any, datetime.datetime], models.Model]:
    activity = _model("activity")
    next_due = _required("schedule", "next_due_date")
    frequency = _required("schedule", "frequency_days")
    advance = _name("schedule", "advance_days")
    link = _attname(activity, _required("activity", "schedule"))
    status = _required("activity", "status")
    start, end = (
        _required("activity", "scheduled_start"),
        _required("activity", "scheduled_end"),
    )
    scheduled = _required("activity_status", "scheduled")
    date_only_end = _is_date_only(activity, end)
    targets = {
        name: _attname(activity, target)
        for name in copied
        if (target := _name("activity", name))
    }

    planned: dict[tuple[Any, datetime.datetime], models.Model] = {}
    for row in rows:
        window = row.get(advance) if advance else None
        dates, _ = occurrences(
            row[next_due],
            row[frequency],
            today,
            advance_days if window is None else max(window, 0),
        )
        for day in dates:
            day_start, day_end = _day_span(day)
            values = {targets[name]: row[attname] for name, attname in copied.items()}
            planned[row["pk"], day_start] = activity(
                **values,
                **{
                    link: row["pk"],
                    status: scheduled,
                    start: day_start,
                    end: day if date_only_end else day_end,
                },
            )
    return planned


def _existing_activities(
    schedules: models.QuerySet[Any],
    planned: dict[tuple[Any, datetime.datetime], models.Model],
) -> set[tuple[Any, datetime.datetime]]:
    """Return the (schedule, start) pairs of planned activities already stored."""
    activity = _model("activity")
    link = _required("activity", "schedule")
    start = _required("activity", "scheduled_start")
    starts = [day_start for _, day_start in planned]

    found = (
        activity._default_manager.using(schedules.db)
        .filter(
            **{
                f"{link}__in": schedules.values("pk"),
                f"{start}__gte": min(starts),
                f"{start}__lte": max(starts),
            }
        )
        .order_by()
        .values_list(_attname(activity, link), start)
    )
    return {(schedule_id, when) for schedule_id, when in found}


# --- check overdue maintenance ----------------------------------------------


def check_overdue_maintenance(
    *, now: datetime.datetime | None = None, using: str | None = None
) -> OverdueCounts:
    """Mark scheduled activities whose scheduled end has passed as overdue.

    One UPDATE. An end with a time passes at that instant; a date-only end
    passes when its day is over in the project's time zone. Work in progress
    keeps its status.
    """
    now = now or timezone.now()
    activity = _model("activity")
    status = _required("activity", "status")
    end = _required("activity", "scheduled_end")

    marked = (
        activity._default_manager.using(using or router.db_for_write(activity))
        .filter(
            **{
                status: _required("activity_status", "scheduled"),
                f"{end}__lt": _end_cutoff(activity, end, now),
            }
        )
        .update(**{status: _required("activity_status", "overdue")})
    )

    if marked:
        invalidate("activity", using=using)
    return OverdueCounts(marked=marked)


# --- generate maintenance events --------------------------------------------


def generate_maintenance_events(
    *,
    now: datetime.datetime | None = None,
    days_ahead: int = DEFAULT_DAYS_AHEAD,
    batch_size: int = DEFAULT_BATCH_SIZE,
    using: str | None = None,
) -> EventCounts:
    """Create the missing calendar events of upcoming maintenance activities.

    Upcoming means scheduled or in progress, not yet over, and starting
    within ``days_ahead`` days. An activity that already has a maintenance
    event gets none, so a rerun creates nothing.
    """
    if not 1 <= days_ahead <= MAX_DAYS_AHEAD or batch_size < 1:
        raise ValueError(
            f"days_ahead must be from 1 to {MAX_DAYS_AHEAD} and batch_size 1 or "
            f"more, not {days_ahead} and {batch_size}"
        )
    now = now or timezone.now()
    using = using or router.db_for_write(_model("event"))

    counts: EventCounts = _in_snapshot(
        using,
        lambda _: _generate_events(now, days_ahead, batch_size, using),
        "Generating maintenance events",
    )
    return counts


def _generate_events(
    now: datetime.datetime, days_ahead: int, batch_size: int, using: str
) -> EventCounts:
    activity, event = _model("activity"), _model("event")
    status = _required("activity", "status")
    start = _required("activity", "scheduled_start")
    end = _required("activity", "scheduled_end")
    link = _attname(event, _required("event", "activity"))
    event_type = _name("event", "event_type")
    maintenance = _name("event_type", "maintenance")
    typed = {event_type: maintenance} if event_type and maintenance else {}

    existing = event._default_manager.using(using).filter(
        **{link: models.OuterRef("pk")}, **typed
    )
    open_statuses = [
        value
        for name in ("scheduled", "in_progress")
        if (value := _name("activity_status", name))
    ]
    copied = [
        name
        for name in ("title", "equipment")
        if _name("activity", name) and _name("event", name)
    ]
    upcoming = (
        activity._default_manager.using(using)
        .filter(
            ~models.Exists(existing),
            **{
                f"{status}__in": open_statuses,
                f"{end}__gte": _end_cutoff(activity, end, now),
                f"{start}__lt": now + datetime.timedelta(days=days_ahead),
            },
        )
        .order_by("pk")
        .values_list(
            "pk",
            start,
            *(_attname(activity, _required("activity", name)) for name in copied),
        )
    )

    fixed: dict[str, Any] = dict(typed)
    if completed := _name("event", "is_completed"):
        fixed[completed] = False
    targets = [_attname(event, _required("event", name)) for name in copied]
    date = _required("event", "event_date")
    events = [
        event(
            **fixed, **dict(zip(targets, values, strict=True)), **{link: pk, date: when}
        )
        for pk, when, *values in upcoming
    ]
    if not events:
        return EventCounts(created=0)

    event._default_manager.using(using).bulk_create(
        events, batch_size=batch_size, ignore_conflicts=True
    )
    invalidate("event", using=using)
    return EventCounts(created=len(events))


# --- running a task ---------------------------------------------------------


@dataclass(frozen=True)
class TaskResult:
    """What one run of a task did, or why it did not run."""

    task: str
    counts: dict[str, int] = field(default_factory=dict)
    #: Why the run did nothing; empty when it ran.
    skipped: str = ""
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether the run wrote any row (a due schedule always moves on)."""
        return any(self.counts.get(key) for key in ("schedules", "created", "marked"))

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data, as a Celery task returns it."""
        return asdict(self)


#: The plain function behind each task, by beat entry name.
TASK_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "generate-scheduled-maintenance": generate_scheduled_maintenance,
    "check-overdue-maintenance": check_overdue_maintenance,
    "generate-maintenance-events": generate_maintenance_events,
}

_SUMMARIES = {
    "generate-scheduled-maintenance": "{schedules} schedules due, {created} "
    "activities created, {existing} already there",
    "check-overdue-maintenance": "{marked} activities marked overdue",
    "generate-maintenance-events": "{created} calendar events created",
}


def summary(result: TaskResult) -> str:
    """Return the one line that describes a run."""
    if result.skipped:
        return f"Task {result.task} skipped: {result.skipped}."
    if not any(result.counts.values()):
        return f"Task {result.task}: nothing to do ({result.seconds:.2f} s)."
    what = _SUMMARIES[result.task].format(**result.counts)
    return f"Task {result.task}: {what} ({result.seconds:.2f} s)."


def run_task(name: str, *, lock: bool = True, **kwargs: Any) -> TaskResult:
    """Run one task now, under its lock unless ``lock`` is false; log one line.

    A run that finds the lock held, or cannot reach the lock's cache, does
    nothing and says why in ``TaskResult.skipped``.
    """
    if name not in TASK_FUNCTIONS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASK_FUNCTIONS)}")
    timeout = conf.beat[name]["lock_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        timeout = BEAT_ENTRY_DEFAULTS["lock_timeout"]
    task_lock = TaskLock(name, timeout)

    if lock:
        try:
            acquired = task_lock.acquire()
        except LockUnavailable as error:
            # Running without the lock could overlap a run elsewhere.
            result = TaskResult(name, skipped=f"its lock's cache failed ({error})")
            logger.warning(summary(result))
            return result
        if not acquired:
            result = TaskResult(
                name,
                skipped=f"another run holds its lock (it expires within {timeout} s)",
            )
            logger.info(summary(result))
            return result

    started = time.perf_counter()
    try:
        counts = TASK_FUNCTIONS[name](**kwargs)
    finally:
        task_lock.release()

    result = TaskResult(name, dict(counts), seconds=time.perf_counter() - started)
    logger.info(summary(result))
    return result


# --- system checks ----------------------------------------------------------


def check_field_settings(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    """Validate ``MAINTENANCE_PERF["FIELDS"]`` against the host's models."""
    configured = user_settings.get("FIELDS", {})
    where = f"{SETTING_NAME}['FIELDS']"
    if not isinstance(configured, dict):
        return [
            _error(
                f"{where} must be a dict, not {type(configured).__name__}.",
                f"Groups: {', '.join(DEFAULT_FIELDS)}.",
                37,
            )
        ]

    messages: list[checks.CheckMessage] = []
    for group, names in configured.items():
        if group not in DEFAULT_FIELDS:
            messages.append(
                _error(
                    f"{where} has an unknown group {group!r}.",
                    f"Groups: {', '.join(DEFAULT_FIELDS)}.",
                    37,
                )
            )
            continue
        if not isinstance(names, dict):
            messages.append(
                _error(
                    f"{where}[{group!r}] must be a dict, not {type(names).__name__}.",
                    f"Keys: {', '.join(DEFAULT_FIELDS[group])}.",
                    37,
                )
            )
            continue
        for key, value in names.items():
            if key not in DEFAULT_FIELDS[group]:
                messages.append(
                    _error(
                        f"{where}[{group!r}] has an unknown key {key!r}.",
                        f"Keys: {', '.join(DEFAULT_FIELDS[group])}.",
                        37,
                    )
                )
            elif value is not None and not isinstance(value, str):
                messages.append(
                    _error(
                        f"{where}[{group!r}][{key!r}] must be a name or None, "
                        f"not {value!r}.",
                        "None tells the app that the project has no such field.",
                        37,
                    )
                )

    if messages:
        return messages
    return _check_mapped_fields() + _check_values() + _check_constraints()


def _mapped_model(role: str) -> type[models.Model] | None:
    try:
        return conf.get_model(role)
    except LookupError:
        # A wrong MODELS label is reported by its own check (E007).
        return None


def _given(role: str) -> dict[str, Any]:
    """Return what the host wrote in one group of ``FIELDS``."""
    given = conf.user_settings.get("FIELDS", {}).get(role, {})
    return given if isinstance(given, dict) else {}


def _check_mapped_fields() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for role in ("schedule", "activity", "event"):
        model = _mapped_model(role)
        if model is not None:
            for key, name in conf.fields[role].items():
                messages += _check_field(model, role, key, name)
    return messages


def _check_field(
    model: type[models.Model], role: str, key: str, name: str | None
) -> list[checks.CheckMessage]:
    where = f"{SETTING_NAME}['FIELDS'][{role!r}][{key!r}]"
    label = model._meta.label
    if name is None:
        if key not in REQUIRED_FIELDS[role]:
            return []
        return [
            _error(
                f"{where} is None, but the maintenance tasks need the {key} field "
                f"of {label}.",
                "Map it to the name of the project's own field.",
                38,
            )
        ]

    try:
        found = model._meta.get_field(name)
    except FieldDoesNotExist:
        source = where if key in _given(role) else f"The default {role} {key} field"
        return [
            _error(
                f"{source} is {name!r}, which {label} does not have.",
                f"Set {where} to the project's {key} field, or to None if it has none.",
                38,
            )
        ]

    expected = FIELD_TYPES.get((role, key))
    if expected is None or isinstance(found, expected):
        return []
    return [
        _error(
            f"{label}.{name}, mapped as the {role} {key} field, is a "
            f"{type(found).__name__}; the tasks need a {expected.__name__}.",
            f"Map {where} to a field of that kind.",
            38,
        )
    ]


def _check_values() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for group, (role, key) in VALUE_GROUPS.items():
        model, name = _mapped_model(role), conf.fields[role][key]
        choices = _choices(model, name)
        for value_key, value in conf.fields[group].items():
            where = f"{SETTING_NAME}['FIELDS'][{group!r}][{value_key!r}]"
            if value is None and value_key in REQUIRED_FIELDS[group]:
                messages.append(
                    _error(
                        f"{where} is None, but the maintenance tasks need the "
                        f"{value_key} value.",
                        f"Map it to the project's own {key} value.",
                        39,
                    )
                )
            elif value is not None and choices and value not in choices:
                messages.append(
                    _error(
                        f"{where} is {value!r}, which is not one of the choices of "
                        f"the {role} {key} field.",
                        f"Choices: {', '.join(sorted(map(str, choices)))}.",
                        39,
                    )
                )
    return messages


def _choices(model: type[models.Model] | None, name: str | None) -> set[Any]:
    if model is None or name is None:
        return set()
    try:
        found = model._meta.get_field(name)
    except FieldDoesNotExist:
        # Reported by the field check.
        return set()
    return {value for value, _ in getattr(found, "flatchoices", None) or ()}


def _has_unique(model: type[models.Model], names: list[str]) -> bool:
    """Whether the table enforces uniqueness over exactly these fields."""
    wanted = {model._meta.get_field(name).name for name in names}
    if len(names) == 1 and getattr(model._meta.get_field(names[0]), "unique", False):
        return True
    groups = [set(group) for group in model._meta.unique_together]
    groups += [
        set(constraint.fields)
        for constraint in model._meta.constraints
        if isinstance(constraint, models.UniqueConstraint)
    ]
    return wanted in groups


def _check_constraints() -> list[checks.CheckMessage]:
    """Warn where no unique constraint backs up the lock against duplicates."""
    messages: list[checks.CheckMessage] = []
    wanted = {
        "activity": (
            [
                conf.fields["activity"]["schedule"],
                conf.fields["activity"]["scheduled_start"],
            ],
            32,
        ),
        "event": ([conf.fields["event"]["activity"]], 33),
    }
    kinds = {"activity": "maintenance activity", "event": "calendar event"}
    for role, (names, number) in wanted.items():
        model = _mapped_model(role)
        if model is None or None in names:
            continue
        fields = [name for name in names if name is not None]
        try:
            unique = _has_unique(model, fields)
        except FieldDoesNotExist:
            # Reported by the field check.
            continue
        if not unique:
            messages.append(
                _warning(
                    f"{model._meta.label} has no unique constraint on "
                    f"({', '.join(fields)}).",
                    "Add a models.UniqueConstraint on those fields (a condition "
                    "is fine), so a run that bypasses the task lock cannot "
                    f"create a {kinds[role]} twice.",
                    number,
                )
            )
    return messages


def check_environment() -> list[checks.CheckMessage]:
    """Warn about a database or time zone setting the tasks do not support."""
    messages: list[checks.CheckMessage] = []
    activity = _mapped_model("activity")
    using = router.db_for_write(activity) if activity else "default"
    vendor = connections[using].vendor
    if vendor not in {"postgresql", "sqlite"}:
        messages.append(
            _warning(
                "The maintenance tasks' date arithmetic is written for PostgreSQL "
                f"and SQLite; the {using!r} database is {vendor}.",
                "Run the tasks against a PostgreSQL or SQLite database, or leave "
                "them out of the beat schedule.",
                35,
            )
        )
    if not settings.USE_TZ:
        messages.append(
            _warning(
                "USE_TZ is False: the maintenance tasks plan activities and judge "
                "overdue work in aware datetimes.",
                "Set USE_TZ = True (the default since Django 5.0).",
                36,
            )
        )
    return messages
