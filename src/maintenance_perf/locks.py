"""One run of a maintenance task at a time, across every worker.

The lock is a key in the dashboard cache (``CACHE_ALIAS``), set only if
absent and with an expiry, holding a random owner token. Only the holder of
the token deletes it, so a run that outlived its expiry never releases the
lock of the run that took over; a worker that died holding it blocks the
task for at most the expiry.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import checks
from django.core.cache import caches

from maintenance_perf.conf import SETTING_NAME, conf

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from django.apps import AppConfig
    from django.core.cache.backends.base import BaseCache

logger = logging.getLogger(__name__)

#: Cache backends whose keys live in one process: a lock there does not keep
#: workers in other processes out.
PROCESS_LOCAL_BACKENDS = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)

# Delete the key only if it still holds this owner's token, in one step.
_RELEASE_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


class LockUnavailable(Exception):
    """The lock's cache failed, so nobody can tell whether the task runs."""


def delete_if_owned(cache: BaseCache, key: str, token: str) -> bool:
    """Delete a lock only if it still holds ``token``; return whether it did."""
    client = getattr(cache, "client", None)
    if client is not None and hasattr(client, "get_client"):
        # django-redis: compare and delete atomically.
        redis = client.get_client(write=True)
        deleted = redis.eval(
            _RELEASE_SCRIPT, 1, cache.make_key(key), client.encode(token)
        )
        return bool(deleted)
    # Other backends have no compare-and-delete: between the read and the
    # delete the lock could expire and be taken, a window far shorter than
    # any expiry.
    if cache.get(key) != token:
        return False
    cache.delete(key)
    return True


def lock_key(name: str) -> str:
    """Return the cache key of the lock of one task."""
    return f"{conf.key_prefix}:lock:task:{name}"


class TaskLock:
    """A lock with an expiry and an owner token, held by one run of a task.

    ``acquire()`` returns whether this run got the lock and raises
    :class:`LockUnavailable` when the cache fails; ``release()`` deletes the
    lock only while this run still owns it. As a context manager the lock
    is released on exit.
    """

    def __init__(self, name: str, timeout: int) -> None:
        self.name = name
        self.timeout = timeout
        self.key = lock_key(name)
        self.token = uuid.uuid4().hex
        self.acquired = False

    @property
    def cache(self) -> BaseCache:
        return caches[conf.cache_alias]

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; return whether this run has it."""
        try:
            self.acquired = bool(self.cache.add(self.key, self.token, self.timeout))
        except Exception as error:
            raise LockUnavailable(f"{type(error).__name__}: {error}") from error
        return self.acquired

    def release(self) -> bool:
        """Delete the lock if this run still owns it; return whether it did."""
        if not self.acquired:
            return False
        self.acquired = False

        try:
            released = self._delete_if_owned()
        except Exception as error:
            # The expiry frees the lock anyway; the run itself succeeded.
            logger.warning(
                "Task %s: could not release its lock (%s: %s); it expires in at "
                "most %s s.",
                self.name,
                type(error).__name__,
                error,
                self.timeout,
            )
            return False

        if not released:
            logger.warning(
                "Task %s ran longer than its lock's %s s expiry; another run may "
                "have overlapped it. Raise BEAT[%r]['lock_timeout'].",
                self.name,
                self.timeout,
                self.name,
            )
        return released

    def _delete_if_owned(self) -> bool:
        return delete_if_owned(self.cache, self.key, self.token)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def check_lock_cache(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn when task locks live in a cache that other processes cannot see."""
    if conf.cache_alias not in settings.CACHES:
        # Reported by the settings check (E003).
        return []
    backend = caches[conf.cache_alias].__class__
    path = f"{backend.__module__}.{backend.__qualname__}"
    if path not in PROCESS_LOCAL_BACKENDS:
        return []
    return [
        checks.Warning(
            f"The maintenance tasks' locks live in the {conf.cache_alias!r} cache, "
            f"a {backend.__name__}, which each process keeps for itself: two "
            "workers can run the same task at once.",
            hint=f"Point {SETTING_NAME}['CACHE_ALIAS'] at a shared cache such as "
            "Redis (django-redis). The unique constraints still keep rows from "
            "being created twice.",
            id="maintenance_perf.W034",
        )
    ]
