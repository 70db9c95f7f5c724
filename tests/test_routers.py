from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory, override_settings

from core.models import Location
from maintenance_perf.cache import invalidate
from maintenance_perf.checks import check_settings
from maintenance_perf.routers import (
    MIDDLEWARE_PATH,
    ROUTER_PATH,
    DashboardReplicaRouter,
    ReadReplicaMiddleware,
    dashboard_reads,
    replica_for_read,
    request_scope,
    use_primary,
)
from tests import factories

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from django.http.response import HttpResponseBase

REPLICA_ON = override_settings(
    MAINTENANCE_PERF={"READ_REPLICA": "replica"},
    DATABASE_ROUTERS=[ROUTER_PATH],
    MIDDLEWARE=[MIDDLEWARE_PATH, *settings.MIDDLEWARE],
    ROOT_URLCONF="tests.replica_urls",
)
both_databases = pytest.mark.django_db(
    transaction=True, databases=["default", "replica"]
)


@contextlib.contextmanager
def statements_by_alias() -> Iterator[dict[str, list[str]]]:
    """Record the SQL each connection alias runs inside the block."""
    ran: dict[str, list[str]] = {alias: [] for alias in connections}

    def recorder(alias: str) -> Callable[..., Any]:
        def record(
            execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
        ) -> Any:
            ran[alias].append(sql)
            return execute(sql, params, many, context)

        return record

    with contextlib.ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(recorder(alias)))
        yield ran


def selects(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]


@pytest.fixture
def equipment() -> None:
    site = factories.location("North")
    factories.equipment(site, name="Press")
    factories.equipment(site, "in_maintenance", name="Lathe")


@both_databases
@REPLICA_ON
def test_router_sends_dashboard_reads_to_the_replica(
    client: Client, equipment: None
) -> None:
    with statements_by_alias() as ran:
        response = client.get("/")

    assert response.status_code == 200
    assert response.context["equipment_total"] == 2
    assert len(selects(ran["replica"])) == len(ran["replica"]) > 0
    assert ran["default"] == []


@both_databases
@REPLICA_ON
def test_router_reads_the_primary_after_a_write_in_the_request(
    client: Client, equipment: None
) -> None:
    with statements_by_alias() as ran:
        response = client.get("/write/")

    assert response.status_code == 200
    # The location written in this request is on the dashboard already.
    assert len(response.context["sites"]) == 2
    assert ran["replica"] == []
    assert ran["default"][0].lstrip().upper().startswith("INSERT")
    assert len(selects(ran["default"])) > 0


@both_databases
@REPLICA_ON
def test_router_forgets_a_write_when_its_request_ends(
    client: Client, equipment: None
) -> None:
    client.get("/write/")
    invalidate("location")

    with statements_by_alias() as ran:
        response = client.get("/")

    assert response.context["dashboard_cache"].status == "miss"
    assert len(selects(ran["replica"])) > 0
    assert ran["default"] == []


@both_databases
@REPLICA_ON
def test_router_reads_the_primary_after_use_primary(
    client: Client, equipment: None
) -> None:
    with statements_by_alias() as ran:
        response = client.get("/raw-write/")

    assert response.status_code == 200
    assert ran["replica"] == []
    assert len(selects(ran["default"])) > 0


@both_databases
@REPLICA_ON
def test_router_sends_dashboard_reads_to_the_replica_under_asgi(
    equipment: None,
) -> None:
    async def load(path: str) -> HttpResponseBase:
        # Django 4.2's AsyncClient.get is not marked as a coroutine function.
        return await AsyncClient().get(path)

    with statements_by_alias() as ran:
        response = async_to_sync(load)("/")
        written = async_to_sync(load)("/write/")

    assert response.status_code == written.status_code == 200
    assert len(selects(ran["replica"])) == len(ran["replica"]) > 0
    # The second request wrote, then read its dashboard from the primary.
    assert ran["default"][0].lstrip().upper().startswith("INSERT")
    assert len(selects(ran["default"])) > 0


@override_settings(MAINTENANCE_PERF={"READ_REPLICA": "replica"})
def test_replica_for_read_only_inside_a_request_and_a_dashboard() -> None:
    outside = replica_for_read()
    with request_scope():
        not_dashboard = replica_for_read()
        with dashboard_reads():
            dashboard = replica_for_read()
    with dashboard_reads():
        no_request = replica_for_read()

    assert (outside, not_dashboard, no_request) == (None, None, None)
    assert dashboard == "replica"


@pytest.mark.parametrize("alias", [None, "nowhere", 5])
def test_replica_for_read_without_a_usable_replica(alias: object) -> None:
    with (
        override_settings(MAINTENANCE_PERF={"READ_REPLICA": alias}),
        request_scope(),
        dashboard_reads(),
    ):
        assert replica_for_read() is None


@override_settings(MAINTENANCE_PERF={"READ_REPLICA": "replica"})
def test_router_write_sends_later_reads_to_the_primary() -> None:
    router = DashboardReplicaRouter()

    with request_scope(), dashboard_reads():
        before = router.db_for_read(Location)
        write = router.db_for_write(Location)
        after = router.db_for_read(Location)

    assert (before, write, after) == ("replica", None, None)


def test_use_primary_outside_a_request_does_nothing() -> None:
    use_primary()

    with request_scope() as state:
        assert not state.wrote


@override_settings(MAINTENANCE_PERF={"READ_REPLICA": "replica"})
def test_router_allow_relation_between_primary_and_replica() -> None:
    router = DashboardReplicaRouter()
    primary, replica, other = Location(), Location(), Location()
    primary._state.db, replica._state.db, other._state.db = (
        "default",
        "replica",
        "archive",
    )

    assert router.allow_relation(primary, replica) is True
    assert router.allow_relation(primary, other) is None


@override_settings(MAINTENANCE_PERF={"READ_REPLICA": "replica"})
def test_router_allow_migrate_never_on_the_replica() -> None:
    router = DashboardReplicaRouter()

    assert router.allow_migrate("replica", "core") is False
    assert router.allow_migrate("default", "core") is None


def test_router_allow_migrate_without_a_replica() -> None:
    assert DashboardReplicaRouter().allow_migrate("replica", "core") is None


@override_settings(MAINTENANCE_PERF={"READ_REPLICA": "replica"})
def test_middleware_async_shares_its_state_with_sync_threads() -> None:
    seen: list[str | None] = []

    async def view(request: HttpRequest) -> HttpResponse:
        with dashboard_reads():
            seen.append(replica_for_read())
            # A sync write, run in another thread as Django runs sync code.
            await sync_to_async(use_primary)()
            seen.append(replica_for_read())
        return HttpResponse()

    middleware = ReadReplicaMiddleware(view)
    async_to_sync(middleware)(RequestFactory().get("/"))  # type: ignore[arg-type]

    assert seen == ["replica", None]
    assert replica_for_read() is None


# --- checks -----------------------------------------------------------------


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


@REPLICA_ON
def test_check_replica_settings_pass_when_complete() -> None:
    assert check_settings() == []


@pytest.mark.parametrize("alias", ["nowhere", 5])
def test_check_replica_alias_not_in_databases(alias: object) -> None:
    with override_settings(MAINTENANCE_PERF={"READ_REPLICA": alias}):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E040"]
    assert "default, replica" in messages[0].hint


@pytest.mark.parametrize("setting", [{}, None])
def test_check_replica_router_without_setting(setting: object) -> None:
    with override_settings(MAINTENANCE_PERF=setting, DATABASE_ROUTERS=[ROUTER_PATH]):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.W040"]


@override_settings(
    MAINTENANCE_PERF={"READ_REPLICA": "default"},
    DATABASE_ROUTERS=[ROUTER_PATH],
    MIDDLEWARE=[MIDDLEWARE_PATH, *settings.MIDDLEWARE],
)
def test_check_replica_setting_naming_the_primary() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.W043"]
    assert "the primary itself" in messages[0].msg


@override_settings(
    MAINTENANCE_PERF={"READ_REPLICA": "replica"},
    MIDDLEWARE=["no.such.Middleware", *settings.MIDDLEWARE],
)
def test_check_replica_setting_without_router_or_middleware() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.W041", "maintenance_perf.W042"]
    assert ROUTER_PATH in messages[0].hint
    assert MIDDLEWARE_PATH in messages[1].hint
