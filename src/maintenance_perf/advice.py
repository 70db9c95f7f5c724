"""What to change in a host project to make it fast: ``optimize_performance``.

Each area has a function that reads the project's settings (and, for the
indexes, its database) and returns :class:`Finding` objects, each saying
what is wrong, why it costs and how to fix it. Nothing here changes the
project. The finding ids are documented in ``docs/optimize.rst``.
"""

from __future__ import annotations

import datetime
import importlib.util
import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.urls import URLResolver, get_resolver

from maintenance_perf.cache import resolve_label, watched_labels
from maintenance_perf.conf import SETTING_NAME, conf
from maintenance_perf.indexes import build_plan, database_index_status
from maintenance_perf.schedule import TASKS, ScheduleError, parse_schedule
from maintenance_perf.views import CachedDashboardMixin, decorated_dashboards

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from maintenance_perf.cache import ModelRef

logger = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]

#: The levels, least severe first.
LEVELS: tuple[Level, ...] = ("info", "warning", "error")

LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"
DJANGO_REDIS_CACHE = "django_redis.cache.RedisCache"
DJANGO_BUILTIN_REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"

#: The seed's cure runs the maintenance tasks every 2 to 4 hours; more often
#: wakes workers for data that has hardly changed.
SHORTEST_TASK_INTERVAL = datetime.timedelta(hours=2)

#: Django's own connection pool for psycopg 3 arrived in Django 5.1.
POOL_DJANGO_VERSION = (5, 1)

REDIS_TIMEOUTS_HOW = (
    "With django-redis, set OPTIONS {'SOCKET_CONNECT_TIMEOUT': 1, "
    "'SOCKET_TIMEOUT': 1}; with Django's RedisCache, OPTIONS "
    "{'socket_connect_timeout': 1, 'socket_timeout': 1} (seconds)."
)
REDIS_CACHE_HOW = (
    "Cache in Redis, which every process shares: pip install "
    '"django-maintenance-perf[redis]" and set CACHES[{alias!r}] to {{"BACKEND": '
    '"django_redis.cache.RedisCache", "LOCATION": "redis://HOST:6379/1", '
    '"OPTIONS": {{"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}}}}.'
)


@dataclass(frozen=True)
class Finding:
    """One thing to change: what, why it costs, and how to fix it."""

    id: str
    level: Level
    title: str
    why: str
    how: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def at_or_above(findings: Iterable[Finding], level: Level) -> list[Finding]:
    """Return the findings of ``level`` or a more severe one."""
    floor = LEVELS.index(level)
    return [finding for finding in findings if LEVELS.index(finding.level) >= floor]


def collect(using: str = DEFAULT_DB_ALIAS) -> list[Finding]:
    """Return every finding about the project, ``using`` its database alias."""
    return [
        *cache_findings(),
        *database_findings(using),
        *beat_findings(),
        *index_findings(using),
        *dashboard_findings(),
        *debug_findings(),
    ]


# --- the dashboard cache ----------------------------------------------------


def cache_findings() -> list[Finding]:
    """Judge the cache that ``CACHE_ALIAS`` names."""
    alias = conf.cache_alias
    cache = getattr(settings, "CACHES", {}).get(alias)
    if not isinstance(cache, dict):
        # An unknown alias is the system check maintenance_perf.E003.
        return []

    backend = cache.get("BACKEND", "")
    options = cache.get("OPTIONS") or {}
    findings = []
    if backend == LOCAL_MEMORY_CACHE and not settings.DEBUG:
        findings.append(
            Finding(
                "cache.local-memory",
                "warning",
                f"The dashboard cache {alias!r} is each process's own memory.",
                "Every web and worker process keeps its own entries and its own "
                "cache versions, so a write made in another process (a Celery "
                "task, another web worker, the admin served elsewhere) does not "
                "invalidate the dashboard: users see old figures until the entry "
                "expires, and two workers can show different figures. Task locks "
                "in this cache do not keep two workers apart either.",
                REDIS_CACHE_HOW.format(alias=alias),
            )
        )
    if backend == DUMMY_CACHE:
        findings.append(
            Finding(
                "cache.dummy",
                "warning",
                f"The dashboard cache {alias!r} stores nothing.",
                "Django's dummy cache forgets every value, so every dashboard "
                "load runs all of its queries, and task locks are never held.",
                REDIS_CACHE_HOW.format(alias=alias),
            )
        )
    if backend in {DJANGO_REDIS_CACHE, DJANGO_BUILTIN_REDIS_CACHE}:
        findings += _redis_timeout_findings(alias, backend, options)
    if backend == DJANGO_REDIS_CACHE and options.get(
        "IGNORE_EXCEPTIONS", getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False)
    ):
        findings.append(
            Finding(
                "cache.ignore-exceptions",
                "warning",
                f"The dashboard cache {alias!r} hides Redis errors "
                "(IGNORE_EXCEPTIONS).",
                "The dashboard cache already survives an outage: it computes "
                "from the database, logs once and leaves Redis alone for a "
                "while. With errors hidden it takes an outage for empty "
                "answers: it logs nothing, tries Redis on every request, loses "
                "cache version bumps without making them good afterwards, and a "
                "stampede lock that was never set looks taken, so every cold "
                f"load waits {SETTING_NAME}['STAMPEDE_WAIT'] seconds first.",
                f"Remove IGNORE_EXCEPTIONS from CACHES[{alias!r}]['OPTIONS'] (and "
                "DJANGO_REDIS_IGNORE_EXCEPTIONS); if other code wants errors "
                f"hidden, give it a cache alias of its own and keep {alias!r} "
                f"for {SETTING_NAME}['CACHE_ALIAS'].",
            )
        )
    return findings


def _redis_timeout_findings(
    alias: str, backend: str, options: Mapping[str, Any]
) -> list[Finding]:
    if backend == DJANGO_REDIS_CACHE:
        pool_options = options.get("CONNECTION_POOL_KWARGS") or {}
        given = {
            name
            for name in ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT")
            if options.get(name) is not None
            or pool_options.get(name.lower()) is not None
        }
        needed = ["SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"]
    else:
        given = {name for name in options if options[name] is not None}
        needed = ["socket_connect_timeout", "socket_timeout"]

    missing = [name for name in needed if name not in given]
    if not missing:
        return []
    return [
        Finding(
            "cache.no-socket-timeout",
            "warning",
            f"The dashboard cache {alias!r} has no {' or '.join(missing)}.",
            "Without a timeout the Redis client waits for ever: a Redis that "
            "stops answering (a network partition, a stuck failover, a full "
            "server) holds every request that reads a dashboard until the web "
            "server runs out of workers. The dashboard cache falls back to the "
            "database only once a call fails.",
            REDIS_TIMEOUTS_HOW,
        )
    ]


# --- database connections ---------------------------------------------------


def database_findings(using: str = DEFAULT_DB_ALIAS) -> list[Finding]:
    """Judge how the ``using`` database's connections are kept."""
    connection = connections[using]
    return connection_findings(
        using,
        connection.settings_dict,
        connection.vendor,
        django_version=django.VERSION[:2],
        asgi=bool(getattr(settings, "ASGI_APPLICATION", None)),
        pool_installed=importlib.util.find_spec("psycopg_pool") is not None,
    )


def connection_findings(
    alias: str,
    settings_dict: Mapping[str, Any],
    vendor: str,
    *,
    django_version: tuple[int, int],
    asgi: bool,
    pool_installed: bool = True,
) -> list[Finding]:
    """Judge one ``DATABASES`` entry; only PostgreSQL's connections cost."""
    if vendor != "postgresql":
        return []

    where = f"DATABASES[{alias!r}]"
    pool = bool((settings_dict.get("OPTIONS") or {}).get("pool"))
    max_age = settings_dict.get("CONN_MAX_AGE", 0)
    persistent = max_age is None or max_age > 0
    can_pool = django_version >= POOL_DJANGO_VERSION
    pool_how = (
        f"pip install 'psycopg[pool]' and set {where}['OPTIONS']['pool'] = True, "
        "with CONN_MAX_AGE 0"
    )

    if pool and not can_pool:
        return [
            Finding(
                "database.pool-unsupported",
                "error",
                f"{where} asks for a connection pool, which needs Django 5.1.",
                "Before 5.1 Django hands the 'pool' option to psycopg as a "
                "connection parameter, and connecting fails.",
                f"Remove 'pool' from {where}['OPTIONS'] and keep connections "
                "with CONN_MAX_AGE and CONN_HEALTH_CHECKS, or upgrade Django.",
            )
        ]
    if pool and persistent:
        return [
            Finding(
                "database.pool-with-persistent-connections",
                "error",
                f"{where} has both a connection pool and CONN_MAX_AGE {max_age!r}.",
                "Django refuses the combination when it connects "
                "(ImproperlyConfigured): the pool already keeps the connections.",
                f"Set {where}['CONN_MAX_AGE'] to 0, the default.",
            )
        ]
    if pool and not pool_installed:
        return [
            Finding(
                "database.pool-package-missing",
                "error",
                f"{where} asks for a connection pool, but psycopg_pool is not "
                "installed.",
                "Django builds the pool with psycopg_pool, and connecting fails "
                "without it (ImproperlyConfigured).",
                "pip install 'psycopg[pool]'.",
            )
        ]
    if pool:
        return []

    findings = []
    if not persistent:
        findings.append(
            Finding(
                "database.connection-per-request",
                "warning",
                f"{where} opens a new connection for every request (CONN_MAX_AGE 0).",
                "Each PostgreSQL connection is a new server process, a TCP "
                "handshake and an authentication (and TLS, where used): "
                "milliseconds per request, more than a warm cached dashboard "
                "takes.",
                (f"On Django 5.1 and later, {pool_how}. " if can_pool else "")
                + f"Otherwise set {where}['CONN_MAX_AGE'] = 60 and "
                "CONN_HEALTH_CHECKS = True under WSGI; under ASGI use "
                + ("the pool or " if can_pool else "")
                + "PgBouncer in front of PostgreSQL.",
            )
        )
    if persistent and not settings_dict.get("CONN_HEALTH_CHECKS", False):
        findings.append(
            Finding(
                "database.no-health-checks",
                "warning",
                f"{where} keeps connections (CONN_MAX_AGE {max_age!r}) without "
                "CONN_HEALTH_CHECKS.",
                "A kept connection that the server has closed (a restart, a "
                "failover, an idle timeout, a proxy) is reused as it is, and the "
                "first query of the next request on it fails.",
                f"Set {where}['CONN_HEALTH_CHECKS'] = True: Django then checks a "
                "kept connection once, when a request first uses it.",
            )
        )
    if persistent and asgi:
        findings.append(
            Finding(
                "database.persistent-connections-under-asgi",
                "warning",
                f"{where} keeps connections (CONN_MAX_AGE {max_age!r}) and the "
                "project is served over ASGI.",
                "Django keeps a connection per thread and async context. Under "
                "ASGI each request runs its database code in a context of its "
                "own, so kept connections are not reused but pile up until "
                "PostgreSQL refuses new ones (too many clients).",
                f"Set {where}['CONN_MAX_AGE'] = 0 and "
                + (f"{pool_how}, or " if can_pool else "")
                + "put PgBouncer (transaction pooling) in front of PostgreSQL.",
            )
        )
    elif persistent and can_pool:
        findings.append(
            Finding(
                "database.pool-available",
                "info",
                f"{where} keeps a connection per thread; Django "
                f"{'.'.join(map(str, POOL_DJANGO_VERSION))} and later can pool "
                "them.",
                "A pool shares a bounded number of open connections between all "
                "the threads of a process, and unlike kept connections it also "
                "works under ASGI.",
                f"With psycopg 3: {pool_how}.",
            )
        )
    return findings


# --- the beat schedule ------------------------------------------------------


def beat_findings() -> list[Finding]:
    """Find maintenance tasks scheduled more often than every 2 hours.

    Both ``MAINTENANCE_PERF["BEAT"]`` and the project's own
    ``CELERY_BEAT_SCHEDULE`` entries of these tasks are read.
    """
    entries: list[tuple[str, str, Any]] = [
        (f"{SETTING_NAME}['BEAT'][{name!r}]", name, entry["schedule"])
        for name, entry in conf.beat.items()
        if entry["enabled"] is not False
    ]
    entry_of_task = {task: name for name, task in TASKS.items()}
    host_schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
    if isinstance(host_schedule, dict):
        for key, entry in host_schedule.items():
            task = entry.get("task") if isinstance(entry, dict) else None
            if task in entry_of_task:
                where = f"CELERY_BEAT_SCHEDULE[{key!r}]"
                entries.append((where, entry_of_task[task], entry.get("schedule")))

    findings = []
    seen: set[tuple[str, datetime.timedelta]] = set()
    for where, name, value in entries:
        interval = average_interval(value)
        # A schedule built by beat_schedule() repeats the BEAT entry.
        if interval is None or interval >= SHORTEST_TASK_INTERVAL:
            continue
        if (name, interval) in seen:
            continue
        seen.add((name, interval))
        findings.append(
            Finding(
                "beat.frequent-task",
                "warning",
                f"{where} runs {name} every {_duration(interval)} on average.",
                "Maintenance data changes over hours and days. Each run wakes a "
                "worker, takes a lock and queries the database, and the seed "
                "site's half-hourly jobs were a main cause of its idle CPU.",
                f"Run it every 2 to 4 hours: {SETTING_NAME}['BEAT'][{name!r}] = "
                "{'schedule': '2h'} (the default), and build the beat schedule "
                "with maintenance_perf.schedule.beat_schedule().",
            )
        )
    return findings


def average_interval(value: Any) -> datetime.timedelta | None:
    """Return the mean time between runs of a schedule, or ``None``.

    A crontab's mean is a day divided by its runs per day, which ignores
    the days of the week and month it is limited to.
    """
    run_every = getattr(value, "run_every", None)
    if isinstance(run_every, datetime.timedelta):
        # A celery.schedules.schedule, as a host's own beat entry may hold.
        return run_every
    try:
        schedule = parse_schedule(value)
    except ScheduleError:
        # The system checks report a schedule beat cannot read.
        return None
    if isinstance(schedule, datetime.timedelta):
        return schedule
    # Celery expands each crontab field into a set; its type stubs omit them.
    expanded: Any = schedule
    runs_per_day = len(expanded.minute) * len(expanded.hour)
    return datetime.timedelta(days=1) / runs_per_day


def _duration(interval: datetime.timedelta) -> str:
    minutes = interval.total_seconds() / 60
    return f"{minutes:g} minutes" if minutes < 60 else f"{minutes / 60:g} hours"


# --- indexes ----------------------------------------------------------------


def index_findings(using: str = DEFAULT_DB_ALIAS) -> list[Finding]:
    """Find planned indexes that the ``using`` database lacks or has INVALID."""
    connection = connections[using]
    plan = build_plan()
    try:
        tables = set(connection.introspection.table_names())
        absent = sorted({p.table for p in plan.indexes if p.table not in tables})
        statuses = [
            (planned, database_index_status(connection, planned))
            for planned in plan.indexes
            if planned.table in tables
        ]
    except ImproperlyConfigured as error:
        # Django refuses the connection's settings (a pool with CONN_MAX_AGE,
        # say); database_findings says why.
        return [
            _not_checked(
                using,
                _sentence(f"Django refuses to connect: {error}"),
                f"Fix DATABASES[{using!r}] as the database findings say, then "
                "run this command again.",
            )
        ]
    except DatabaseError as error:
        return [_not_checked(using, _sentence(f"Could not read its indexes: {error}"))]

    findings = []
    if absent:
        findings.append(
            _not_checked(using, f"These tables do not exist: {', '.join(absent)}.")
        )
    missing = [planned for planned, status in statuses if status == "missing"]
    invalid = [planned for planned, status in statuses if status == "invalid"]
    if missing:
        findings.append(
            Finding(
                "indexes.missing",
                "warning",
                f"{len(missing)} of {len(plan.indexes)} planned indexes are "
                f"missing from database {using!r}.",
                f"Missing: {_index_list(missing)}. Without them the dashboard's "
                "counts and the maintenance tasks' selections read whole tables.",
                "Run manage.py maintenance_perf_index_migrations (it writes "
                "nothing for indexes that already have a migration), then "
                "manage.py migrate; maintenance_perf_index_migrations --check "
                "says which step is missing.",
            )
        )
    if invalid:
        findings.append(
            Finding(
                "indexes.invalid",
                "warning",
                f"{len(invalid)} planned indexes are INVALID in database {using!r}.",
                f"INVALID: {_index_list(invalid)}. A concurrent build that "
                "failed leaves an INVALID index: PostgreSQL never uses it for "
                "queries, yet updates it on every write.",
                "Migrate the index's app back before its index migration and "
                "forward again; the migration drops the INVALID index and builds "
                "it anew.",
            )
        )
    return findings


def _not_checked(using: str, why: str, how: str | None = None) -> Finding:
    return Finding(
        "indexes.not-checked",
        "warning",
        f"The planned indexes of database {using!r} could not all be checked.",
        why,
        how or f"Run manage.py migrate --database {using}, then this command again.",
    )


def _sentence(text: str) -> str:
    """End a message that may quote an error's own full stop with exactly one."""
    text = text.rstrip()
    return text if text.endswith((".", "?", "!")) else text + "."


def _index_list(planned: Sequence[Any]) -> str:
    return ", ".join(
        f"{item.index.name} on {item.model._meta.label} "
        f"({', '.join(item.index.fields)})"
        for item in planned
    )


# --- dashboards -------------------------------------------------------------


def dashboard_findings(urlconf: str | None = None) -> list[Finding]:
    """Find dashboards that watch models whose writes invalidate nothing."""
    watched = watched_labels()
    findings = []
    for dashboard, watch in served_dashboards(urlconf):
        for ref in watch:
            try:
                label = resolve_label(ref)
            except (LookupError, ValueError) as error:
                findings.append(
                    Finding(
                        "dashboards.unknown-model",
                        "error",
                        f"Dashboard {dashboard} watches {ref!r}, which is no "
                        "installed model.",
                        f"Computing the dashboard fails ({error}).",
                        "Name the model as a class, an 'app_label.ModelName' "
                        f"label or a role of {SETTING_NAME}['MODELS'].",
                    )
                )
                continue
            if label not in watched:
                findings.append(
                    Finding(
                        "dashboards.unwatched-model",
                        "warning",
                        f"Dashboard {dashboard} watches {label}, whose writes "
                        "invalidate nothing.",
                        f"Only the models of {SETTING_NAME}['MODELS'] and "
                        f"{SETTING_NAME}['WATCH'] bump their cache version when "
                        f"written, so the dashboard shows a change to {label} "
                        "only once its entry expires.",
                        f"Add {label!r} to {SETTING_NAME}['WATCH'].",
                    )
                )
    return findings


def served_dashboards(
    urlconf: str | None = None,
) -> list[tuple[str, tuple[ModelRef, ...]]]:
    """Return the name and watched models of each cached dashboard served.

    A class-based view served by the URLconf counts when it uses
    :class:`~maintenance_perf.views.CachedDashboardMixin`; a function
    decorated with :func:`~maintenance_perf.views.cached_context` counts
    when it is defined in the module of a view the URLconf serves.
    """
    callbacks = list(dict.fromkeys(_callbacks(get_resolver(urlconf).url_patterns)))
    dashboards: dict[str, tuple[ModelRef, ...]] = {}
    for callback in callbacks:
        view_class = getattr(callback, "view_class", None)
        if isinstance(view_class, type) and issubclass(
            view_class, CachedDashboardMixin
        ):
            name = (
                view_class.cache_name
                or f"{view_class.__module__}.{view_class.__qualname__}"
            )
            dashboards[name] = tuple(view_class.watch_models)

    modules = {getattr(callback, "__module__", None) for callback in callbacks}
    for function, (name, watch) in list(decorated_dashboards.items()):
        if function.__module__ in modules:
            dashboards[name] = watch
    return sorted(dashboards.items())


def _callbacks(patterns: Iterable[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern.url_patterns)
        else:
            yield pattern.callback


# --- DEBUG ------------------------------------------------------------------


def debug_findings() -> list[Finding]:
    """Report ``DEBUG`` left on."""
    if not settings.DEBUG:
        return []
    return [
        Finding(
            "debug.on",
            "warning",
            "DEBUG is on.",
            "Django then keeps every SQL statement of a request in memory "
            "(connection.queries), which slows pages that run many queries and "
            "grows a long-running task's memory, and error pages show settings "
            "and source code to anyone.",
            "Set DEBUG = False in production; measure speed with DEBUG off.",
        )
    ]
