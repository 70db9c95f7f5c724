"""Versioned dashboard cache: O(1) invalidation, stampede protection, outages.

Every watched model has a *cache version*, a number kept in the cache under
its own key. A cached dashboard entry stores the versions it was computed
from; one ``get_many`` reads the entry and the current versions together, and
the entry is fresh only while they still match. A write bumps its model's
version once the transaction commits, so invalidation touches one key and
never scans or pattern-deletes.

On a miss one request takes a short lock (with an owner token and an expiry)
and recomputes; the others get the previous value, or wait briefly for the
new one. When the cache backend fails, the dashboard is computed from the
database, the outage is logged once per interval, and the cache is left alone
for a while so requests do not each wait out a connect timeout.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import pickle
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, models, transaction

from maintenance_perf.conf import DEFAULT_MODELS, conf
from maintenance_perf.locks import delete_if_owned
from maintenance_perf.pages import Page
from maintenance_perf.routers import dashboard_reads

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from django.core.cache.backends.base import BaseCache

logger = logging.getLogger(__name__)

#: What a dashboard names as the data it depends on: a model class, an
#: ``"app_label.ModelName"`` label, or a role of ``MAINTENANCE_PERF["MODELS"]``.
ModelRef = type[models.Model] | str

Status = Literal["hit", "stale", "miss", "error", "bypass"]

#: The version of every model is read together with this epoch; bumping it
#: invalidates every dashboard at once (after an outage swallowed a bump).
EPOCH = "*"

#: Consecutive failures after which the cache is left alone for a while.
FAILURE_THRESHOLD = 3

#: How often a waiting request looks for the entry another one computes.
POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class CacheResult:
    """What :func:`get_or_compute` returns: the data and how it was obtained.

    ``status`` is ``"hit"`` (fresh from the cache), ``"stale"`` (the previous
    value, while another request recomputes), ``"miss"`` (computed now),
    ``"error"`` (computed because the cache failed) or ``"bypass"``
    (computed because the cache is resting after an outage). ``token``
    identifies the computation the data came from; cached template sections
    are keyed by it, and it is empty when nothing was cached.
    """

    data: Any
    status: Status
    token: str = ""
    timeout: int = 0


# --- counters ---------------------------------------------------------------


class DashboardCounters:
    """Hits, misses, stale serves, recomputes and errors per dashboard.

    Counted in this process only; a deployment with several processes sums
    them per process.
    """

    KINDS = ("hits", "misses", "stale", "recomputes", "errors")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}

    def add(self, dashboard: str, kind: str, amount: int = 1) -> None:
        with self._lock:
            self._counts.setdefault(dashboard, Counter())[kind] += amount

    def get(self, dashboard: str) -> dict[str, int]:
        """Return the counters of one dashboard, every kind present."""
        with self._lock:
            counts = self._counts.get(dashboard, Counter())
            return {kind: counts[kind] for kind in self.KINDS}

    def all(self) -> dict[str, dict[str, int]]:
        """Return the counters of every dashboard seen so far."""
        with self._lock:
            names = list(self._counts)
        return {name: self.get(name) for name in names}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


counters = DashboardCounters()


# --- outage handling --------------------------------------------------------


class CacheHealth:
    """Track failures of each cache alias and rest it after repeated ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: Counter[str] = Counter()
        self._resting_until: dict[str, float] = {}
        self._last_logged: dict[str, float] = {}
        # Version bumps lost to an outage, by alias: bump the epoch once the
        # cache answers again, so nothing cached before the outage survives.
        self._lost_bumps: set[str] = set()

    def available(self, alias: str) -> bool:
        with self._lock:
            return time.monotonic() >= self._resting_until.get(alias, 0.0)

    def failed(self, alias: str, error: Exception, lost_bump: bool = False) -> None:
        now = time.monotonic()
        interval = conf.outage_retry_interval
        with self._lock:
            self._failures[alias] += 1
            if lost_bump:
                self._lost_bumps.add(alias)
            if self._failures[alias] >= FAILURE_THRESHOLD:
                self._resting_until[alias] = now + interval
            should_log = now - self._last_logged.get(alias, -interval) >= interval
            if should_log:
                self._last_logged[alias] = now
        if should_log:
            logger.warning(
                "Dashboard cache %r is unavailable (%s: %s); computing dashboards "
                "from the database. Next report in %s s at the earliest.",
                alias,
                type(error).__name__,
                error,
                interval,
            )

    def lose_bump(self, alias: str) -> None:
        with self._lock:
            self._lost_bumps.add(alias)

    def owes_epoch_bump(self, alias: str) -> bool:
        with self._lock:
            return alias in self._lost_bumps

    def epoch_bumped(self, alias: str) -> None:
        with self._lock:
            self._lost_bumps.discard(alias)

    def succeeded(self, alias: str) -> None:
        with self._lock:
            self._failures.pop(alias, None)
            self._resting_until.pop(alias, None)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._resting_until.clear()
            self._last_logged.clear()
            self._lost_bumps.clear()


health = CacheHealth()


class CacheUnavailable(Exception):
    """The cache failed (``attempted``) or is resting; compute without it."""

    def __init__(self, alias: str, attempted: bool) -> None:
        super().__init__(alias)
        self.attempted = attempted

    @property
    def status(self) -> Status:
        return "error" if self.attempted else "bypass"


def _call(operation: Callable[[BaseCache], Any], lost_bump: bool = False) -> Any:
    """Run one operation on the dashboard cache, guarded against outages."""
    alias = conf.cache_alias
    if not health.available(alias):
        if lost_bump:
            health.lose_bump(alias)
        raise CacheUnavailable(alias, attempted=False)

    cache = caches[alias]
    try:
        if health.owes_epoch_bump(alias):
            # Before anything is read: entries cached before the outage must
            # not match the versions this operation reads.
            _bump_keys(cache, [version_key(EPOCH)])
            health.epoch_bumped(alias)
            logger.info(
                "Dashboard cache %r is back; invalidated every dashboard.", alias
            )
        result = operation(cache)
    except Exception as error:
        health.failed(alias, error, lost_bump)
        raise CacheUnavailable(alias, attempted=True) from error

    health.succeeded(alias)
    return result


# --- keys and versions ------------------------------------------------------


def digest(*parts: Any) -> str:
    """Hash ``parts`` into a short key-safe string."""
    raw = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=256)
def _name_digest(dashboard: str) -> str:
    return digest(dashboard)[:12]


def version_key(label: str) -> str:
    return f"{conf.key_prefix}:v:{label.lower()}"


def entry_key(dashboard: str, scope: Any) -> str:
    """Return the key of one dashboard's entry for one scope.

    Both parts are hashed, so the key stays short and free of spaces and
    control characters whatever a user's name or a query string holds.
    """
    return f"{conf.key_prefix}:e:{_name_digest(dashboard)}:{digest(scope)}"


def resolve_label(ref: ModelRef) -> str:
    """Return the ``app_label.ModelName`` label a model reference stands for."""
    if isinstance(ref, type) and issubclass(ref, models.Model):
        return ref._meta.label
    if ref in DEFAULT_MODELS:
        label = conf.models[ref]
        if label is None:
            raise LookupError(f"the {ref!r} role is mapped to None in MODELS")
        return label
    return str(apps.get_model(ref)._meta.label)


def user_labels() -> list[str]:
    """Return the models a user's name and permissions come from.

    A cached page that reads ``user`` or ``perms`` is valid only while none
    of them changed (see :func:`get_page`).
    """
    # Versions are per model, not per user: any user's save (a login saves
    # last_login) renders every page that reads the user once again.
    if not _user_labels_memo:
        wanted = {settings.AUTH_USER_MODEL, "auth.Group", "auth.Permission"}
        _user_labels_memo.extend(
            sorted(model._meta.label for model in _installed_models(wanted))
        )
    return _user_labels_memo


#: Read on every hit of a page that reads the user; emptied with the settings.
_user_labels_memo: list[str] = []


def _installed_models(labels: set[str]) -> list[type[models.Model]]:
    # The project may have no auth app, or a user model of its own.
    return [model for model in apps.get_models() if model._meta.label in labels]


def watched_labels() -> set[str]:
    """Return the labels whose writes invalidate dashboards automatically."""
    labels = {label for label in conf.models.values() if label}
    labels.update(conf.watch)
    labels.update(user_labels())
    return labels


def _bump_keys(cache: BaseCache, keys: Iterable[str]) -> None:
    for key in keys:
        try:
            cache.incr(key)
        except ValueError:
            # Missing (never set, evicted or flushed): any fresh random start
            # differs from what an old entry stored.
            cache.set(key, _random_version(), None)


def _random_version() -> int:
    return random.randrange(1, 2**40)


def bump_versions(labels: Iterable[str]) -> None:
    """Bump the cache version of each model label now."""
    keys = [version_key(label) for label in sorted(set(labels))]
    with contextlib.suppress(CacheUnavailable):
        _call(lambda cache: _bump_keys(cache, keys), lost_bump=True)


def invalidate(*refs: ModelRef, using: str | None = None) -> None:
    """Invalidate every dashboard that depends on these models.

    The bump happens once the current transaction on ``using`` commits (at
    once outside a transaction), so no request can cache data from before
    the commit under the new version. Call it after writes that send no
    signal: ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()`` and
    raw SQL.
    """
    _schedule({resolve_label(ref) for ref in refs}, using or DEFAULT_DB_ALIAS)


_local = threading.local()


class _PendingBump:
    """One ``on_commit`` callback per transaction, collecting every label."""

    def __init__(self, using: str) -> None:
        self.using = using
        self.labels: set[str] = set()

    def is_registered(self) -> bool:
        connection = transaction.get_connection(self.using)
        # The callback is gone once its savepoint or transaction rolled back.
        return any(entry[1] is self for entry in connection.run_on_commit)

    def __call__(self) -> None:
        # Only one bump per alias is pending at a time, and it is this one.
        _local.pending.pop(self.using, None)
        bump_versions(self.labels)


def _schedule(labels: set[str], using: str) -> None:
    if not labels:
        return
    if not transaction.get_connection(using).in_atomic_block:
        bump_versions(labels)
        return

    pending: dict[str, _PendingBump] = _local.__dict__.setdefault("pending", {})
    bump = pending.get(using)
    if bump is None or not bump.is_registered():
        bump = pending[using] = _PendingBump(using)
        transaction.on_commit(bump, using=using)
    bump.labels.update(labels)


# --- signal receivers -------------------------------------------------------


def _tracked_change(instance: models.Model) -> bool | None:
    """Whether a FieldTracker on the instance saw a change; None without one."""
    try:
        from model_utils.tracker import FieldTracker
    except ImportError:  # pragma: no cover - django-model-utils is optional
        return None

    saw_tracker = False
    for klass in type(instance).__mro__:
        for value in vars(klass).values():
            if isinstance(value, FieldTracker):
                saw_tracker = True
                if getattr(instance, value.name).changed():
                    return True
    return False if saw_tracker else None


def on_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool = False,
    using: str = DEFAULT_DB_ALIAS,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    # Connected to watched models only (see connect_signals). A save that
    # changed no tracked field shows nothing new on a dashboard.
    if not created and _tracked_change(instance) is False:
        return
    _schedule({sender._meta.label}, using)


def on_delete(
    sender: type[models.Model], using: str = DEFAULT_DB_ALIAS, **kwargs: Any
) -> None:
    _schedule({sender._meta.label}, using)


def on_m2m_changed(
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    model: type[models.Model],
    using: str = DEFAULT_DB_ALIAS,
    **kwargs: Any,
) -> None:
    if not action.startswith("post_"):
        return
    labels = {type(instance)._meta.label, model._meta.label, sender._meta.label}
    _schedule(labels & watched_labels(), using)


# --- the read path ----------------------------------------------------------


@dataclass
class _Entry:
    versions: tuple[Any, ...]
    fresh_until: float
    token: str
    # Pickled apart, so that serving a cached page never unpickles the data.
    payload: bytes = field(repr=False)

    @property
    def data(self) -> Any:
        return pickle.loads(self.payload)

    def is_fresh(self, versions: tuple[Any, ...]) -> bool:
        return self.versions == versions and self.fresh_until > time.time()


def _jittered(timeout: int) -> float:
    """Spread expiries so entries written together do not expire together."""
    return timeout * (1 - conf.timeout_jitter * random.random())


@dataclass
class _Lookup:
    entry: _Entry | None
    versions: tuple[Any, ...]
    fresh: bool
    locked: bool


def _look_up(key: str, version_keys: Sequence[str], token: str) -> _Lookup:
    """Read the entry with the current versions; lock it for recompute if stale."""

    def look_up(cache: BaseCache) -> _Lookup:
        found = cache.get_many([key, *version_keys])
        _start_missing_versions(cache, version_keys, found)

        entry = found.get(key)
        entry = entry if isinstance(entry, _Entry) else None
        versions = tuple(found.get(k) for k in version_keys)
        fresh = entry is not None and entry.is_fresh(versions)
        locked = not fresh and cache.add(f"{key}:lock", token, conf.lock_timeout)
        return _Lookup(entry, versions, fresh, locked)

    lookup: _Lookup = _call(look_up)
    return lookup


def _start_missing_versions(
    cache: BaseCache, version_keys: Sequence[str], found: dict[str, Any]
) -> None:
    missing = [k for k in version_keys if found.get(k) is None]
    for version in missing:
        # First use or eviction: start from a random value; add() keeps a
        # version another process set meanwhile.
        cache.add(version, _random_version(), None)
    if missing:
        found.update(cache.get_many(missing))


def current_versions(labels: Sequence[str]) -> tuple[Any, ...]:
    """Return the cache versions of these model labels, starting missing ones.

    Raises :class:`CacheUnavailable` when the cache fails or rests.
    """
    keys = [version_key(label) for label in labels]

    def read(cache: BaseCache) -> tuple[Any, ...]:
        found = cache.get_many(keys)
        _start_missing_versions(cache, keys, found)
        return tuple(found.get(k) for k in keys)

    versions: tuple[Any, ...] = _call(read)
    return versions


def _release(cache: BaseCache, lock_key: str, token: str) -> None:
    """Delete the lock only if this request still owns it."""
    delete_if_owned(cache, lock_key, token)


def get_or_compute(
    dashboard: str,
    scope: Any,
    watch: Iterable[ModelRef],
    compute: Callable[[], Any],
    timeout: int | None = None,
    serve_stale: bool = True,
    cache_failure: CacheUnavailable | None = None,
) -> CacheResult:
    """Return a dashboard's data for one scope, from the cache when fresh.

    ``compute`` must return plain, picklable data (no querysets or model
    instances). ``watch`` names the models the data depends on.
    ``cache_failure`` is a failure the caller already met in this request
    (see :func:`get_page`): the data is then computed without trying the
    cache again, so a request waits out at most one connect timeout.
    """
    timeout = conf.dashboard_timeout if timeout is None else timeout
    key = entry_key(dashboard, scope)
    version_keys = _version_keys(watch)
    if timeout <= 0:
        counters.add(dashboard, "misses")
        return _computed(dashboard, compute, "bypass")

    token = uuid.uuid4().hex
    try:
        if cache_failure is not None:
            raise cache_failure
        lookup = _look_up(key, version_keys, token)
    except CacheUnavailable as unavailable:
        counters.add(dashboard, "misses")
        return _computed(dashboard, compute, unavailable.status)

    entry, versions, locked = lookup.entry, lookup.versions, lookup.locked
    if entry is not None and lookup.fresh:
        counters.add(dashboard, "hits")
        return CacheResult(entry.data, "hit", entry.token, timeout)

    counters.add(dashboard, "misses")
    if not locked:
        if entry is not None and serve_stale:
            counters.add(dashboard, "stale")
            return CacheResult(entry.data, "stale", entry.token, timeout)
        waited = _wait_for(key, versions, entry.token if entry else None)
        if waited is not None:
            counters.add(dashboard, "hits")
            return CacheResult(waited.data, "hit", waited.token, timeout)
        logger.info(
            "Dashboard %s: waited %s s for another request to compute it; "
            "computing here too.",
            dashboard,
            conf.stampede_wait,
        )

    try:
        data = _computed(dashboard, compute, "miss").data
        payload = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
        new_entry = _Entry(versions, time.time() + _jittered(timeout), token, payload)
        # Kept twice as long as it is fresh, so a stale value can be served
        # while the next request recomputes.
        _call(lambda cache: cache.set(key, new_entry, timeout * 2))
    except CacheUnavailable as unavailable:
        counters.add(dashboard, "errors", amount=unavailable.attempted)
        return CacheResult(data, unavailable.status)
    finally:
        if locked:
            with contextlib.suppress(CacheUnavailable):
                _call(lambda cache: _release(cache, f"{key}:lock", token))
    return CacheResult(data, "miss", token, timeout)


def _version_keys(watch: Iterable[ModelRef]) -> list[str]:
    # Read on every request of every dashboard; the settings they come from
    # change only under override_settings, which empties the memo.
    refs = tuple(watch)
    keys = _version_keys_memo.get(refs)
    if keys is None:
        labels = sorted({resolve_label(ref) for ref in refs})
        keys = [version_key(EPOCH)] + [version_key(label) for label in labels]
        _version_keys_memo[refs] = keys
    return keys


_version_keys_memo: dict[tuple[ModelRef, ...], list[str]] = {}


def _computed(
    dashboard: str, compute: Callable[[], Any], status: Status
) -> CacheResult:
    if status == "error":
        counters.add(dashboard, "errors")
    counters.add(dashboard, "recomputes")
    with dashboard_reads():
        data = compute()
    return CacheResult(data, status)


def _wait_for(
    key: str, versions: tuple[Any, ...], previous_token: str | None
) -> _Entry | None:
    deadline = time.monotonic() + conf.stampede_wait
    while time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        try:
            entry = _call(lambda cache: cache.get(key))
        except CacheUnavailable:
            return None
        if (
            isinstance(entry, _Entry)
            and entry.token != previous_token
            and entry.versions == versions
        ):
            return entry
    return None


# --- cached template sections ----------------------------------------------


def section_key(token: str, template: str, source_digest: str, name: str) -> str:
    return f"{conf.key_prefix}:s:{digest(token, template, source_digest, name)}"


def get_section(key: str) -> str | None:
    try:
        value = _call(lambda cache: cache.get(key))
    except CacheUnavailable:
        return None
    return value if isinstance(value, str) else None


def set_section(key: str, html: str, timeout: int) -> None:
    with contextlib.suppress(CacheUnavailable):
        _call(lambda cache: cache.set(key, html, timeout * 2))


# --- cached pages -----------------------------------------------------------


def page_key(dashboard: str, scope: Any, template: str, user: Any) -> str:
    """Return the key of a dashboard's rendered page (see maintenance_perf.pages).

    ``user`` is None for a page that does not read the user, so users of one
    scope share it; otherwise it tells the user apart.
    """
    return (
        f"{conf.key_prefix}:p:{_name_digest(dashboard)}:{digest(scope, template, user)}"
    )


def get_page(
    dashboard: str,
    scope: Any,
    watch: Iterable[ModelRef],
    key: str,
    reads_user: bool = False,
) -> Page | None:
    """Return a dashboard's cached page if the data it shows is still fresh.

    One ``get_many`` reads the page, the data entry and the current versions;
    the data itself is not unpickled. A page that ``reads_user`` must also
    have been rendered at the current versions of :func:`user_labels`, so a
    changed name, group or permission shows on the next load. A page counts
    as a hit; anything else returns None and counts nothing, and the caller
    goes the usual way. Raises :class:`CacheUnavailable` when the cache fails
    or rests.
    """
    version_keys = _version_keys(watch)
    user_keys = [version_key(label) for label in user_labels()] if reads_user else []
    data_key = entry_key(dashboard, scope)
    found = _call(
        lambda cache: cache.get_many([key, data_key, *version_keys, *user_keys])
    )

    page, entry = found.get(key), found.get(data_key)
    versions = tuple(found.get(k) for k in version_keys)
    if not (isinstance(page, Page) and isinstance(entry, _Entry)):
        return None
    if page.token != entry.token or not entry.is_fresh(versions):
        return None
    if reads_user and page.user_versions != tuple(found.get(k) for k in user_keys):
        return None
    counters.add(dashboard, "hits")
    return page


def set_page(key: str, page: Page, timeout: int) -> None:
    with contextlib.suppress(CacheUnavailable):
        _call(lambda cache: cache.set(key, page, timeout * 2))


def connect_signals(**kwargs: Any) -> None:
    """Connect the invalidating receivers to every watched model.

    Receivers are connected per model, never to all senders: a ``post_delete``
    receiver for every model would stop Django from fast-deleting any model
    of the project.
    """
    if kwargs.get("setting") not in {None, "MAINTENANCE_PERF"}:
        return
    _version_keys_memo.clear()
    _user_labels_memo.clear()

    signals = models.signals
    for sender in _connected:
        signals.post_save.disconnect(on_save, sender=sender)
        signals.post_delete.disconnect(on_delete, sender=sender)
        signals.m2m_changed.disconnect(on_m2m_changed, sender=sender)
    _connected.clear()

    watched = watched_labels()
    for model in _installed_models(watched):
        signals.post_save.connect(on_save, sender=model)
        signals.post_delete.connect(on_delete, sender=model)
        _connected.add(model)
    throughs = {
        cast("type[models.Model]", many_to_many.remote_field.through)
        for model in apps.get_models()
        for many_to_many in model._meta.many_to_many
        if {model._meta.label, many_to_many.related_model._meta.label} & watched
    }
    for through in throughs:
        signals.m2m_changed.connect(on_m2m_changed, sender=through)
        _connected.add(through)


_connected: set[type[models.Model]] = set()
