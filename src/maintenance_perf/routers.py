"""Send the dashboard's aggregate reads to a read replica.

:class:`DashboardReplicaRouter` sends a read to the ``READ_REPLICA`` alias
only while a dashboard computes its data (:func:`dashboard_reads`, which
:func:`maintenance_perf.cache.get_or_compute` enters), and only inside a
request that :class:`ReadReplicaMiddleware` opened and that has written
nothing yet. Every write, every other read, and every read after a write in
the same request go where Django would send them without this router: the
primary.

A request's state is one object that the middleware puts in a context
variable. Threads that asgiref starts for sync code under ASGI run in a
copy of the context, which still holds that same object, so a write
anywhere in the request is seen by every later read of it.
"""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, router
from django.utils.module_loading import import_string

from maintenance_perf.check_messages import error as _error
from maintenance_perf.check_messages import warning as _warning
from maintenance_perf.conf import SETTING_NAME, conf

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from django.core import checks
    from django.db.models import Model
    from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

ROUTER_PATH = "maintenance_perf.routers.DashboardReplicaRouter"
MIDDLEWARE_PATH = "maintenance_perf.routers.ReadReplicaMiddleware"


@dataclass
class RequestState:
    """What the router knows about the current request."""

    wrote: bool = False


_request: ContextVar[RequestState | None] = ContextVar(
    "maintenance_perf_request", default=None
)
_dashboard_reads: ContextVar[bool] = ContextVar(
    "maintenance_perf_dashboard_reads", default=False
)


@contextlib.contextmanager
def request_scope() -> Iterator[RequestState]:
    """Track writes for one request; what the middleware wraps a request in."""
    state = RequestState()
    token = _request.set(state)
    try:
        yield state
    finally:
        _request.reset(token)


@contextlib.contextmanager
def dashboard_reads() -> Iterator[None]:
    """Let the router send the reads inside the block to the replica."""
    token = _dashboard_reads.set(True)
    try:
        yield
    finally:
        _dashboard_reads.reset(token)


def use_primary() -> None:
    """Read from the primary for the rest of the current request.

    The router sees every write made through the ORM; call this after a
    write it cannot see, such as raw SQL through ``connection.cursor()``.
    """
    state = _request.get()
    if state is not None:
        state.wrote = True


def replica_for_read() -> str | None:
    """Return the alias a read should use now, or ``None`` for the primary."""
    alias = conf.read_replica
    state = _request.get()
    if alias is None or state is None or state.wrote or not _dashboard_reads.get():
        return None
    return alias


class DashboardReplicaRouter:
    """Route dashboard reads to ``MAINTENANCE_PERF["READ_REPLICA"]``.

    Add it to ``DATABASE_ROUTERS`` after any router that sends models to
    databases other than the primary.
    """

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return replica_for_read()

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        # Django also asks this before reads meant for a write
        # (select_for_update, get_or_create); either way the request now
        # reads the primary, which has what it wrote.
        use_primary()
        return None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        # A dashboard may relate an object read from the replica to one from
        # the primary: they are the same database, copied.
        pair = {DEFAULT_DB_ALIAS, conf.read_replica}
        if obj1._state.db in pair and obj2._state.db in pair:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        # A replica receives its schema from the primary by replication.
        if conf.read_replica is not None and db == conf.read_replica:
            return False
        return None


class ReadReplicaMiddleware:
    """Give each request its own write tracking, for sync and async stacks."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]],
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        with request_scope():
            return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            return await cast("Awaitable[HttpResponse]", self.get_response(request))


# --- system checks ----------------------------------------------------------


def _router_installed() -> bool:
    return any(isinstance(entry, DashboardReplicaRouter) for entry in router.routers)


def _middleware_installed() -> bool:
    for path in getattr(settings, "MIDDLEWARE", None) or ():
        try:
            found = import_string(path)
        except ImportError:
            # Django itself reports a middleware that does not import.
            continue
        if isinstance(found, type) and issubclass(found, ReadReplicaMiddleware):
            return True
    return False


def check_replica_settings(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    """Validate ``READ_REPLICA`` and how the router and middleware are set up."""
    alias = user_settings.get("READ_REPLICA")
    where = f"{SETTING_NAME}['READ_REPLICA']"
    databases = getattr(settings, "DATABASES", {})
    if alias is None:
        if _router_installed():
            return [
                _warning(
                    f"DATABASE_ROUTERS holds {ROUTER_PATH}, but {where} is not "
                    "set: every read stays on the primary.",
                    f"Set {where} to the alias of the replica in DATABASES, or "
                    "remove the router.",
                    40,
                )
            ]
        return []

    if not isinstance(alias, str) or alias not in databases:
        return [
            _error(
                f"{where} is {alias!r}, which is not an alias in DATABASES.",
                f"Add the replica to DATABASES and name its alias here; "
                f"DATABASES has: {', '.join(sorted(databases))}.",
                40,
            )
        ]

    messages: list[checks.CheckMessage] = []
    if alias == DEFAULT_DB_ALIAS:
        messages.append(
            _warning(
                f"{where} is {alias!r}, the primary itself: the router sends "
                "dashboard reads where they would go anyway.",
                f"Set {where} to the alias of a replica, or remove it.",
                43,
            )
        )
    if not _router_installed():
        messages.append(
            _warning(
                f"{where} is {alias!r}, but DATABASE_ROUTERS does not hold "
                f"{ROUTER_PATH}: every read stays on the primary.",
                f"Add {ROUTER_PATH!r} to DATABASE_ROUTERS.",
                41,
            )
        )
    if not _middleware_installed():
        messages.append(
            _warning(
                f"{where} is {alias!r}, but MIDDLEWARE does not hold "
                f"{MIDDLEWARE_PATH}: without it no request is known to have "
                "written nothing, so every read stays on the primary.",
                f"Add {MIDDLEWARE_PATH!r} near the top of MIDDLEWARE.",
                42,
            )
        )
    return messages
