"""System checks for the ``MAINTENANCE_PERF`` setting.

Each id is documented in ``docs/checks.rst``. A mistake is reported with a
hint and never raised, so ``manage.py check`` lists every problem at once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core import checks

from maintenance_perf.check_messages import error as _error
from maintenance_perf.check_messages import suggest as _suggest
from maintenance_perf.check_messages import warning as _warning
from maintenance_perf.conf import DEFAULT_MODELS, DEFAULTS, SETTING_NAME
from maintenance_perf.indexes import check_index_settings
from maintenance_perf.locks import check_lock_cache
from maintenance_perf.maintenance import check_environment, check_field_settings
from maintenance_perf.routers import check_replica_settings
from maintenance_perf.schedule import check_beat_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.apps import AppConfig

# memcached refuses keys with spaces or control characters; the prefix is the
# only part of a key the host writes verbatim, so it is held to that rule.
KEY_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,50}$")


@checks.register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Validate ``MAINTENANCE_PERF``, one message per mistake."""
    user_settings = getattr(settings, SETTING_NAME, {})
    if user_settings is None:
        return check_replica_settings({})
    if not isinstance(user_settings, dict):
        return [
            _error(
                f"{SETTING_NAME} must be a dict, not {type(user_settings).__name__}.",
                f"Set {SETTING_NAME} = {{}} to use every default.",
                1,
            )
        ]

    messages: list[checks.CheckMessage] = []
    for key in user_settings:
        if key not in DEFAULTS:
            messages.append(
                _error(
                    f"{SETTING_NAME} has an unknown key {key!r}.",
                    f"Known keys: {', '.join(sorted(DEFAULTS))}."
                    + _suggest(str(key), DEFAULTS),
                    2,
                )
            )

    messages += _check_cache_alias(user_settings)
    messages += _check_timeout(user_settings)
    messages += _check_key_prefix(user_settings)
    messages += _check_models(user_settings)
    messages += _check_cache_tuning(user_settings)
    messages += check_index_settings(user_settings)
    messages += check_beat_settings(user_settings)
    messages += check_field_settings(user_settings)
    messages += check_environment()
    messages += check_replica_settings(user_settings)
    return messages


# Only ``check --deploy`` runs it: the demo's local-memory cache is fine for
# a single process.
checks.register(check_lock_cache, checks.Tags.caches, deploy=True)


def _check_cache_alias(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    alias = user_settings.get("CACHE_ALIAS", DEFAULTS["CACHE_ALIAS"])
    caches = getattr(settings, "CACHES", {})
    if isinstance(alias, str) and alias in caches:
        return []
    return [
        _error(
            f"{SETTING_NAME}['CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
            f"Use one of: {', '.join(sorted(caches)) or '(no caches configured)'}."
            + (_suggest(alias, caches) if isinstance(alias, str) else ""),
            3,
        )
    ]


def _check_timeout(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    timeout = user_settings.get("DASHBOARD_TIMEOUT", DEFAULTS["DASHBOARD_TIMEOUT"])
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not 0 <= timeout <= MAX_DASHBOARD_TIMEOUT
    ):
        return [
            _error(
                f"{SETTING_NAME}['DASHBOARD_TIMEOUT'] must be a whole number of "
                f"seconds from 0 to {MAX_DASHBOARD_TIMEOUT} (a year), not "
                f"{timeout!r}.",
                "The default, 300, caches dashboard data for five minutes.",
                4,
            )
        ]
    if timeout == 0:
        return [
            _warning(
                f"{SETTING_NAME}['DASHBOARD_TIMEOUT'] is 0: dashboard data is "
                "never served from the cache.",
                "Remove the key to cache for the default 300 seconds.",
                1,
            )
        ]
    return []


def _check_key_prefix(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    prefix = user_settings.get("KEY_PREFIX", DEFAULTS["KEY_PREFIX"])
    if isinstance(prefix, str) and KEY_PREFIX_PATTERN.match(prefix):
        return []
    return [
        _error(
            f"{SETTING_NAME}['KEY_PREFIX'] is {prefix!r}; it must be 1 to 50 "
            "letters, digits or any of _ . : -",
            "Cache keys must stay valid on every backend, memcached included.",
            5,
        )
    ]


def _check_models(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    mapping = user_settings.get("MODELS", {})
    if not isinstance(mapping, dict):
        return [
            _error(
                f"{SETTING_NAME}['MODELS'] must be a dict of role to model label, "
                f"not {type(mapping).__name__}.",
                f"Roles: {', '.join(DEFAULT_MODELS)}.",
                6,
            )
        ]

    messages: list[checks.CheckMessage] = []
    for role in mapping:
        if role not in DEFAULT_MODELS:
            messages.append(
                _error(
                    f"{SETTING_NAME}['MODELS'] has an unknown role {role!r}.",
                    f"Roles: {', '.join(DEFAULT_MODELS)}."
                    + _suggest(str(role), DEFAULT_MODELS),
                    6,
                )
            )

    for role, label in {**DEFAULT_MODELS, **mapping}.items():
        if role in DEFAULT_MODELS and label is not None:
            messages += _check_model_label(role, label, role in mapping)
    return messages


def _check_model_label(
    role: str, label: Any, configured: bool
) -> list[checks.CheckMessage]:
    where = (
        f"{SETTING_NAME}['MODELS'][{role!r}]"
        if configured
        else f"The default {role} model"
    )
    if not isinstance(label, str) or label.count(".") != 1:
        return [
            _error(
                f"{where} is {label!r}, which is not an 'app_label.ModelName' label.",
                "Write the label as Django does, e.g. 'equipment.Equipment', "
                "or None if the project has no such model.",
                7,
            )
        ]

    try:
        apps.get_model(label)
    except LookupError:
        known = [model._meta.label for model in apps.get_models()]
        return [
            _error(
                f"{where} is {label!r}, which is not an installed model.",
                f"Set {SETTING_NAME}['MODELS'][{role!r}] to the project's "
                f"{role} model, or to None if it has none." + _suggest(label, known),
                7,
            )
        ]
    return []


#: The dashboard cache's tuning keys: (key, smallest, largest, whole number, id).
CACHE_TUNING: list[tuple[str, float, float, bool, int]] = [
    ("TIMEOUT_JITTER", 0, 0.5, False, 11),
    ("LOCK_TIMEOUT", 1, 3600, True, 12),
    # A request waits this long for another one's result: past a minute it
    # is a hung request, not a protected one.
    ("STAMPEDE_WAIT", 0, 60, False, 13),
    ("OUTAGE_RETRY_INTERVAL", 1, 3600, True, 14),
]

#: A year: longer timeouts overflow some cache backends.
MAX_DASHBOARD_TIMEOUT = 365 * 24 * 3600


def _check_cache_tuning(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for key, smallest, largest, whole, number in CACHE_TUNING:
        value = user_settings.get(key, DEFAULTS[key])
        valid = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (isinstance(value, int) or not whole)
            # Compared, never converted: 10**400 is no float.
            and smallest <= value <= largest
        )
        if not valid:
            bounds = f"from {smallest} to {largest}"
            kind = "a whole number" if whole else "a number"
            messages.append(
                _error(
                    f"{SETTING_NAME}[{key!r}] must be {kind} {bounds}, not {value!r}.",
                    f"Remove the key to use the default, {DEFAULTS[key]!r}.",
                    number,
                )
            )

    watch = user_settings.get("WATCH", [])
    if not isinstance(watch, (list, tuple)):
        return [
            *messages,
            _error(
                f"{SETTING_NAME}['WATCH'] must be a list of model labels, "
                f"not {type(watch).__name__}.",
                "For example: ['inventory.SparePart'].",
                10,
            ),
        ]
    for label in watch:
        if not _is_installed_model(label):
            messages.append(
                _error(
                    f"{SETTING_NAME}['WATCH'] holds {label!r}, which is not the "
                    "label of an installed model.",
                    "Write labels as 'app_label.ModelName'.",
                    10,
                )
            )
    return messages


def _is_installed_model(label: Any) -> bool:
    if not isinstance(label, str) or label.count(".") != 1:
        return False
    try:
        apps.get_model(label)
    except LookupError:
        return False
    return True
