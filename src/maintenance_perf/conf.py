"""The ``MAINTENANCE_PERF`` settings dict, read on each access.

Every property reads ``settings.MAINTENANCE_PERF`` again, so
``override_settings`` in a host's tests takes effect at once. Values are not
validated here: :mod:`maintenance_perf.checks` reports bad ones as system
check errors, and the properties fall back to the default for a value of the
wrong type so that a mistake never crashes an import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings

if TYPE_CHECKING:
    from django.db.models import Model

SETTING_NAME = "MAINTENANCE_PERF"

#: The host models the app works on, by role, with the standard schema's labels.
#: A role mapped to ``None`` tells the app that the host has no such model.
DEFAULT_MODELS: dict[str, str | None] = {
    "location": "core.Location",
    "equipment": "equipment.Equipment",
    "activity": "maintenance.MaintenanceActivity",
    "schedule": "maintenance.MaintenanceSchedule",
    "event": "events.CalendarEvent",
}

#: The beat schedule of each maintenance task, by beat entry name.
DEFAULT_BEAT: dict[str, dict[str, Any]] = {
    "generate-scheduled-maintenance": {"schedule": "2h"},
    "check-overdue-maintenance": {"schedule": "4h"},
    "generate-maintenance-events": {"schedule": "2h"},
}

#: What a beat entry holds besides its schedule, when the host leaves it out.
BEAT_ENTRY_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "options": {},
    "kwargs": {},
    "lock_timeout": 900,
}

#: The standard schema's field names by role, and its status and type values.
#: A field mapped to ``None`` tells the app that the host's model has none.
DEFAULT_FIELDS: dict[str, dict[str, str | None]] = {
    "schedule": {
        "equipment": "equipment",
        "title": "title",
        "activity_type": "activity_type",
        "frequency_days": "frequency_days",
        "next_due_date": "next_due_date",
        "is_active": "is_active",
        "advance_days": None,
    },
    "activity": {
        "schedule": "schedule",
        "equipment": "equipment",
        "title": "title",
        "activity_type": "activity_type",
        "status": "status",
        "scheduled_start": "scheduled_start",
        "scheduled_end": "scheduled_end",
    },
    "event": {
        "activity": "activity",
        "equipment": "equipment",
        "title": "title",
        "event_type": "event_type",
        "event_date": "event_date",
        "is_completed": "is_completed",
    },
    "activity_status": {
        "scheduled": "scheduled",
        "in_progress": "in_progress",
        "overdue": "overdue",
    },
    "event_type": {"maintenance": "maintenance"},
}

DEFAULTS: dict[str, Any] = {
    "CACHE_ALIAS": "default",
    "KEY_PREFIX": "mperf",
    "DASHBOARD_TIMEOUT": 300,
    "MODELS": DEFAULT_MODELS,
    "WATCH": [],
    "TIMEOUT_JITTER": 0.1,
    "LOCK_TIMEOUT": 30,
    "STAMPEDE_WAIT": 5,
    "OUTAGE_RETRY_INTERVAL": 30,
    "INDEXES": {},
    "BEAT": {},
    "FIELDS": {},
    "READ_REPLICA": None,
}


def beat_entries(configured: Any) -> dict[str, dict[str, Any]]:
    """Merge a ``BEAT`` value into the defaults, ignoring what is malformed."""
    if not isinstance(configured, dict):
        configured = {}
    entries = {}
    for name, default in DEFAULT_BEAT.items():
        entry = configured.get(name)
        entries[name] = {
            **BEAT_ENTRY_DEFAULTS,
            **default,
            **(entry if isinstance(entry, dict) else {}),
        }
    return entries


class Settings:
    """Typed access to ``MAINTENANCE_PERF`` with every default filled in."""

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTING_NAME, None)
        return value if isinstance(value, dict) else {}

    def _get(self, key: str, expected: type | tuple[type, ...]) -> Any:
        value = self.user_settings.get(key, DEFAULTS[key])
        if not isinstance(value, expected) or isinstance(value, bool):
            return DEFAULTS[key]
        return value

    @property
    def cache_alias(self) -> str:
        """The alias in ``CACHES`` that dashboard data is cached in."""
        return str(self._get("CACHE_ALIAS", str))

    @property
    def key_prefix(self) -> str:
        """The prefix of every cache key the app writes."""
        return str(self._get("KEY_PREFIX", str))

    @property
    def dashboard_timeout(self) -> int:
        """Seconds a cached dashboard context stays valid."""
        return int(self._get("DASHBOARD_TIMEOUT", int))

    @property
    def models(self) -> dict[str, str | None]:
        """The host's model label for each role, defaults merged in."""
        mapping = self._get("MODELS", dict)
        return {**DEFAULT_MODELS, **mapping}

    @property
    def watch(self) -> list[str]:
        """Model labels watched for writes, besides the ``MODELS`` roles."""
        return [
            label
            for label in self._get("WATCH", (list, tuple))
            if isinstance(label, str)
        ]

    @property
    def timeout_jitter(self) -> float:
        """Fraction of the timeout by which entries expire early, at random."""
        return float(self._get("TIMEOUT_JITTER", (int, float)))

    @property
    def lock_timeout(self) -> int:
        """Seconds after which a recompute lock expires, if never released."""
        return int(self._get("LOCK_TIMEOUT", int))

    @property
    def stampede_wait(self) -> float:
        """Seconds a request waits for another one's recompute on a cold miss."""
        return float(self._get("STAMPEDE_WAIT", (int, float)))

    @property
    def outage_retry_interval(self) -> int:
        """Seconds the cache is left alone after repeated failures."""
        return int(self._get("OUTAGE_RETRY_INTERVAL", int))

    @property
    def indexes(self) -> dict[str, list[Any]]:
        """Extra index plan entries, by model role or model label."""
        return dict(self._get("INDEXES", dict))

    @property
    def beat(self) -> dict[str, dict[str, Any]]:
        """Each maintenance task's beat entry, every default filled in."""
        return beat_entries(self._get("BEAT", dict))

    @property
    def fields(self) -> dict[str, dict[str, str | None]]:
        """The host's field names and values, by role, defaults merged in."""
        configured = self._get("FIELDS", dict)
        merged = {}
        for group, default in DEFAULT_FIELDS.items():
            given = configured.get(group)
            names = {
                key: value
                for key, value in (given.items() if isinstance(given, dict) else ())
                if key in default and (value is None or isinstance(value, str))
            }
            merged[group] = {**default, **names}
        return merged

    @property
    def read_replica(self) -> str | None:
        """The alias dashboard reads go to, or ``None`` for the primary.

        An alias missing from ``DATABASES`` counts as ``None``: the check
        reports it, and dashboards keep working on the primary meanwhile.
        """
        alias = self.user_settings.get("READ_REPLICA", DEFAULTS["READ_REPLICA"])
        if isinstance(alias, str) and alias in getattr(settings, "DATABASES", {}):
            return alias
        return None

    def get_model(self, role: str) -> type[Model] | None:
        """Return the host model mapped to ``role``, or ``None`` if it has none."""
        if role not in DEFAULT_MODELS:
            raise KeyError(
                f"unknown model role {role!r}; known: {sorted(DEFAULT_MODELS)}"
            )

        label = self.models[role]
        if label is None:
            return None
        return apps.get_model(label)


conf = Settings()
