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
}


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
