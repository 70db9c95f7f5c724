"""Celery's ``beat_schedule`` for the maintenance tasks, from ``BEAT`` settings.

Each task has a beat entry named after it. Its ``schedule`` is an interval
(seconds, a ``timedelta``, or a short string such as ``"2h"`` or
``"1h30m"``) or a crontab (a five-field string such as ``"0 */2 * * *"``, a
dict of crontab fields, or a ``celery.schedules.crontab``). A host wires the
result into its Celery app with one line::

    app.conf.beat_schedule = beat_schedule()

Celery is imported only when a crontab is built or checked, so the settings
checks run in a project that has not installed it.
"""

from __future__ import annotations

import datetime
import logging
import re
from typing import TYPE_CHECKING, Any

from maintenance_perf.check_messages import error as _error
from maintenance_perf.check_messages import suggest as _suggest
from maintenance_perf.check_messages import warning as _warning
from maintenance_perf.conf import (
    BEAT_ENTRY_DEFAULTS,
    DEFAULT_BEAT,
    SETTING_NAME,
    beat_entries,
    conf,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from celery.schedules import crontab
    from django.core import checks

logger = logging.getLogger(__name__)

#: The Celery task that each beat entry runs.
TASKS: dict[str, str] = {
    "generate-scheduled-maintenance": "maintenance_perf.generate_scheduled_maintenance",
    "check-overdue-maintenance": "maintenance_perf.check_overdue_maintenance",
    "generate-maintenance-events": "maintenance_perf.generate_maintenance_events",
}

#: The most days ahead a task plans activities or calendar events: a century,
#: beyond any maintenance plan and far from the last date Python can hold.
MAX_DAYS_AHEAD = 36_500

#: The keyword arguments each task takes from its entry, with their least and
#: greatest values (``None`` when there is no greatest).
TASK_KWARGS: dict[str, dict[str, tuple[int, int | None]]] = {
    "generate-scheduled-maintenance": {
        "advance_days": (0, MAX_DAYS_AHEAD),
        "batch_size": (1, None),
    },
    "check-overdue-maintenance": {},
    "generate-maintenance-events": {
        "days_ahead": (1, MAX_DAYS_AHEAD),
        "batch_size": (1, None),
    },
}

#: The ``apply_async`` options an entry may set, and the type of each.
OPTIONS: dict[str, type | tuple[type, ...]] = {
    "queue": str,
    "exchange": str,
    "routing_key": str,
    "priority": int,
    "expires": (int, float),
}

CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")

#: Intervals shorter than this wake the workers more often than maintenance
#: data changes; the seed's 30-minute jobs were the main cause of idle CPU.
SHORT_INTERVAL = datetime.timedelta(minutes=15)

DAY = datetime.timedelta(days=1)

_INTERVAL = re.compile(
    r"^\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*"
    r"(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?\s*$"
)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}

#: One field of a crontab: numbers, ``*``, ranges, steps, lists, and the
#: names of days and months.
_CRONTAB_FIELD = re.compile(
    r"^(?:[\d*/,-]|sun|mon|tue|wed|thu|fri|sat|jan|feb|mar|apr|may|jun|jul|aug"
    r"|sep|oct|nov|dec)+$",
    re.IGNORECASE,
)


class ScheduleError(ValueError):
    """A schedule value that is not an interval or a crontab.

    ``crontab`` tells whether the value was meant as a crontab but is
    malformed.
    """

    def __init__(self, message: str, crontab: bool = False) -> None:
        super().__init__(message)
        self.crontab = crontab


def parse_interval(value: str) -> datetime.timedelta | None:
    """Return the interval a string such as ``"2h"`` or ``"1h30m"`` means."""
    match = _INTERVAL.match(value)
    if match is None or not any(match.groups()):
        return None
    return datetime.timedelta(
        **{
            _UNITS[unit]: int(amount)
            for unit, amount in match.groupdict().items()
            if amount
        }
    )


def parse_schedule(value: Any) -> datetime.timedelta | crontab:
    """Turn one entry's ``schedule`` into a ``timedelta`` or a crontab.

    Raise :class:`ScheduleError` for anything else, and for an interval that
    is zero or negative.
    """
    if isinstance(value, str) and len(value.split()) == len(CRONTAB_FIELDS):
        return _crontab(dict(zip(CRONTAB_FIELDS, value.split(), strict=True)))
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(CRONTAB_FIELDS))
        if unknown:
            raise ScheduleError(
                f"crontab fields are {', '.join(CRONTAB_FIELDS)}, not "
                f"{', '.join(map(repr, unknown))}",
                crontab=True,
            )
        return _crontab({key: str(field) for key, field in value.items()})
    if _is_celery_crontab(value):
        result: crontab = value
        return result
    if _is_miscounted_crontab(value):
        raise ScheduleError(
            f"malformed crontab {value!r}: it has {len(value.split())} fields, "
            f"not {len(CRONTAB_FIELDS)}",
            crontab=True,
        )

    interval = _interval(value)
    if interval <= datetime.timedelta(0):
        raise ScheduleError(f"the interval {value!r} is not positive")
    return interval


def _is_miscounted_crontab(value: Any) -> bool:
    """Whether ``value`` is written like a crontab, with too few or many fields.

    A string of several fields, each made of what crontab fields are made of,
    such as ``"0 3 * *"``. The unit letters of an interval such as ``"1h 30m"``
    are not among them.
    """
    if not isinstance(value, str):
        return False
    fields = value.split()
    return len(fields) > 1 and all(_CRONTAB_FIELD.match(field) for field in fields)


def _interval(value: Any) -> datetime.timedelta:
    try:
        interval = _parsed_interval(value)
    except (OverflowError, ValueError) as error:
        # NaN, infinity, or more days than a timedelta holds.
        raise ScheduleError(f"the interval {value!r} is out of range") from error
    if interval is not None:
        return interval
    raise ScheduleError(
        f"{value!r} is neither an interval (seconds, a timedelta, or a string "
        "such as '2h' or '1h30m') nor a crontab"
    )


def _parsed_interval(value: Any) -> datetime.timedelta | None:
    if isinstance(value, datetime.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.timedelta(seconds=value)
    if isinstance(value, str):
        return parse_interval(value)
    return None


def _crontab(fields: dict[str, str]) -> crontab:
    try:
        from celery.schedules import crontab
    except ImportError as error:  # pragma: no cover - the tests install Celery
        raise ScheduleError(
            "a crontab needs Celery: pip install django-maintenance-perf[celery]",
            crontab=True,
        ) from error

    try:
        return crontab(**fields)
    except (ValueError, TypeError) as error:
        # Celery's message names the field value, not which field it was.
        raise ScheduleError(
            f"malformed crontab {' '.join(fields.values())!r}: {error}", crontab=True
        ) from error


def _is_celery_crontab(value: Any) -> bool:
    try:
        from celery.schedules import crontab
    except ImportError:  # pragma: no cover - the tests install Celery
        return False
    return isinstance(value, crontab)


def crontab_fields(schedule: crontab) -> dict[str, str]:
    """Return a crontab's five fields as the strings it was written with."""
    return {field: str(getattr(schedule, f"_orig_{field}")) for field in CRONTAB_FIELDS}


def beat_schedule(
    settings: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Return Celery's ``beat_schedule`` for the enabled maintenance tasks.

    By default ``MAINTENANCE_PERF`` is read from Django's settings; a host
    building its Celery settings inside ``settings.py`` passes its
    ``MAINTENANCE_PERF`` dict instead. A value the checks would reject never
    raises here: the entry keeps its default schedule and a warning is logged.
    """
    entries = conf.beat if settings is None else beat_entries(settings.get("BEAT", {}))

    schedule = {}
    for name, entry in entries.items():
        if entry["enabled"] is False:
            continue
        schedule[name] = {
            "task": TASKS[name],
            "schedule": _schedule_or_default(name, entry["schedule"]),
            "options": dict(entry["options"])
            if isinstance(entry["options"], dict)
            else {},
            "kwargs": dict(entry["kwargs"])
            if isinstance(entry["kwargs"], dict)
            else {},
        }
    return schedule


def _schedule_or_default(name: str, value: Any) -> datetime.timedelta | crontab:
    try:
        return parse_schedule(value)
    except ScheduleError as error:
        default = DEFAULT_BEAT[name]["schedule"]
        logger.warning(
            "Beat entry %s: %s; it runs on its default schedule, %r, instead. "
            "manage.py check says more.",
            name,
            error,
            default,
        )
        return parse_schedule(default)


# --- system checks ----------------------------------------------------------


def check_beat_settings(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    """Validate ``MAINTENANCE_PERF["BEAT"]``, one message per mistake."""
    beat = user_settings.get("BEAT", {})
    where = f"{SETTING_NAME}['BEAT']"
    if not isinstance(beat, dict):
        return [
            _error(
                f"{where} must be a dict of beat entry name to entry, "
                f"not {type(beat).__name__}.",
                f"Entries: {', '.join(TASKS)}.",
                30,
            )
        ]

    messages: list[checks.CheckMessage] = []
    for name, entry in beat.items():
        if name not in TASKS:
            messages.append(
                _error(
                    f"{where} names an unknown task {name!r}.",
                    f"Entries: {', '.join(TASKS)}." + _suggest(str(name), list(TASKS)),
                    30,
                )
            )
        elif not isinstance(entry, dict):
            messages.append(
                _error(
                    f"{where}[{name!r}] must be a dict, not {type(entry).__name__}.",
                    "For example: {'schedule': '2h'}, or {'enabled': False}.",
                    30,
                )
            )
        else:
            messages += _check_entry(name, entry)
    return messages


def _check_entry(name: str, entry: dict[str, Any]) -> list[checks.CheckMessage]:
    where = f"{SETTING_NAME}['BEAT'][{name!r}]"
    keys = ["schedule", *BEAT_ENTRY_DEFAULTS]
    messages: list[checks.CheckMessage] = [
        _error(
            f"{where} has an unknown key {key!r}.",
            f"Keys: {', '.join(keys)}." + _suggest(str(key), keys),
            31,
        )
        for key in entry
        if key not in keys
    ]

    if "schedule" in entry:
        messages += _check_schedule(where, entry["schedule"])
    if not isinstance(entry.get("enabled", True), bool):
        messages.append(
            _error(
                f"{where}['enabled'] must be True or False, not {entry['enabled']!r}.",
                "Set it to False to leave the task out of the beat schedule.",
                34,
            )
        )
    messages += _check_options(where, entry.get("options", {}))
    messages += _check_kwargs(name, where, entry.get("kwargs", {}))

    timeout = entry.get("lock_timeout", BEAT_ENTRY_DEFAULTS["lock_timeout"])
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        messages.append(
            _error(
                f"{where}['lock_timeout'] must be a whole number of seconds, 1 or "
                f"more, not {timeout!r}.",
                "It bounds how long a worker that died holding the task's lock "
                f"blocks it; the default is {BEAT_ENTRY_DEFAULTS['lock_timeout']}.",
                36,
            )
        )
    return messages


def _check_schedule(where: str, value: Any) -> list[checks.CheckMessage]:
    try:
        schedule = parse_schedule(value)
    except ScheduleError as error:
        if error.crontab:
            return [
                _error(
                    # Celery's own messages end with a full stop.
                    f"{where}['schedule'] is a {str(error).rstrip('.')}.",
                    "Write a crontab as five fields, 'minute hour day_of_month "
                    "month_of_year day_of_week', e.g. '0 3 * * *' for 03:00 daily.",
                    33,
                )
            ]
        return [
            _error(
                f"{where}['schedule']: {error}.",
                "Give a positive interval, e.g. 7200, timedelta(hours=2) or '2h', "
                "or a crontab such as '0 */2 * * *'.",
                32,
            )
        ]

    if not isinstance(schedule, datetime.timedelta):
        return []
    if schedule < SHORT_INTERVAL:
        return [
            _warning(
                f"{where}['schedule'] runs the task every "
                f"{schedule.total_seconds():g} s, more often than every 15 minutes.",
                "Maintenance data changes slowly; every 2 to 4 hours is usually "
                "enough and keeps idle workers idle.",
                30,
            )
        ]
    if schedule % DAY == datetime.timedelta(0):
        return [
            _warning(
                f"{where}['schedule'] is an interval of {schedule.days} day(s). "
                "An interval restarts its countdown whenever beat restarts, so a "
                "daily job drifts and can be skipped by frequent deploys.",
                "Use a crontab for a job that should run at a time of day, "
                "e.g. '0 3 * * *'.",
                31,
            )
        ]
    return []


def _check_options(where: str, options: Any) -> list[checks.CheckMessage]:
    hint = f"Options: {', '.join(OPTIONS)}."
    if not isinstance(options, dict):
        return [
            _error(
                f"{where}['options'] must be a dict, not {type(options).__name__}.",
                hint,
                35,
            )
        ]

    messages: list[checks.CheckMessage] = []
    for key, value in options.items():
        expected = OPTIONS.get(key)
        if expected is None:
            messages.append(
                _error(
                    f"{where}['options'] has an unknown option {key!r}.",
                    hint + _suggest(str(key), list(OPTIONS)),
                    35,
                )
            )
        elif not _valid_option(key, value, expected):
            messages.append(
                _error(
                    f"{where}['options'][{key!r}] is {value!r}.",
                    "queue, exchange and routing_key are names, priority a whole "
                    "number 0 or more, expires a positive number of seconds.",
                    35,
                )
            )
    return messages


def _valid_option(key: str, value: Any, expected: type | tuple[type, ...]) -> bool:
    right_type = isinstance(value, expected) and not isinstance(value, bool)
    if not right_type or key not in {"expires", "priority"}:
        return right_type
    return bool(value > 0 if key == "expires" else value >= 0)


def accepted_values(bounds: tuple[int, int | None]) -> str:
    """Say which whole numbers a task argument accepts, e.g. "from 0 to 36500"."""
    least, greatest = bounds
    return f"{least} or more" if greatest is None else f"from {least} to {greatest}"


def is_accepted(value: Any, bounds: tuple[int, int | None]) -> bool:
    """Whether ``value`` is a whole number within a task argument's bounds."""
    least, greatest = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return least <= value and (greatest is None or value <= greatest)


def _check_kwargs(name: str, where: str, kwargs: Any) -> list[checks.CheckMessage]:
    allowed = TASK_KWARGS[name]
    hint = (
        f"The task takes: {', '.join(allowed)}."
        if allowed
        else "The task takes no arguments."
    )
    if not isinstance(kwargs, dict):
        return [
            _error(
                f"{where}['kwargs'] must be a dict, not {type(kwargs).__name__}.",
                hint,
                35,
            )
        ]

    messages: list[checks.CheckMessage] = []
    for key, value in kwargs.items():
        if key not in allowed:
            messages.append(
                _error(
                    f"{where}['kwargs'] has an argument {key!r} the task does not "
                    "take.",
                    hint + _suggest(str(key), list(allowed)),
                    35,
                )
            )
        elif not is_accepted(value, allowed[key]):
            messages.append(
                _error(
                    f"{where}['kwargs'][{key!r}] must be a whole number "
                    f"{accepted_values(allowed[key])}, not {value!r}.",
                    hint,
                    35,
                )
            )
    return messages
