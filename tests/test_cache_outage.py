"""The dashboard keeps working while its Redis cache is down.

Each test starts a Redis server of its own on a free loopback port, so it can
stop, pause and restart it without touching the server other tests use.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest
from django.test import override_settings

from maintenance_perf.cache import counters
from tests import factories
from tests.conftest import IN_CI

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from django.test import Client

BACKENDS = {
    "django-redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3},
    },
    "django": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3},
    },
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on loopback that keeps nothing on disk."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed; the outage tests need it"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        self.process = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def outage_settings(backend: str, port: int, **perf: Any) -> override_settings:
    cache = {**BACKENDS[backend], "LOCATION": f"redis://127.0.0.1:{port}/0"}
    return override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "dashboards": cache,
        },
        MAINTENANCE_PERF={"CACHE_ALIAS": "dashboards", **perf},
    )


def total_on_page(client: Client) -> tuple[int, int, str]:
    """Load the dashboard: its status code, total and footer cache status."""
    with override_settings(DEBUG=True):
        response = client.get("/")
    html = response.content.decode()
    total = re.search(r'data-status="total">(\d+)<', html)
    status = re.search(r'<span id="cache-status">cache (\w+)</span>', html)
    assert total, html[:500]
    assert status, html[-500:]
    return (response.status_code, int(total.group(1)), status.group(1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.django_db(transaction=True)
def test_dashboard_redis_stopped_mid_run_still_serves(
    client: Client,
    redis_server: RedisServer,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    area = factories.location()
    factories.equipment(area)

    with outage_settings(backend, redis_server.port), caplog.at_level(logging.WARNING):
        before = [total_on_page(client) for _ in range(2)]
        redis_server.stop()
        factories.equipment(area)
        during = [total_on_page(client) for _ in range(10)]

    assert before == [(200, 1, "miss"), (200, 1, "hit")]
    assert {(code, total) for code, total, _ in during} == {(200, 2)}
    # The first failures are tried, then the cache rests instead of making
    # every request wait for a refused connection.
    assert [status for *_, status in during] == ["error"] * 2 + ["bypass"] * 8
    warnings = [r for r in caplog.records if r.name == "maintenance_perf.cache"]
    assert len(warnings) == 1
    assert "'dashboards' is unavailable" in warnings[0].getMessage()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.django_db(transaction=True)
def test_dashboard_closed_port_serves_without_waiting(
    client: Client, backend: str
) -> None:
    factories.equipment(factories.location())

    with outage_settings(backend, free_port()):
        started = time.monotonic()
        pages = [total_on_page(client) for _ in range(20)]
        elapsed = time.monotonic() - started

    assert {page[:2] for page in pages} == {(200, 1)}
    assert [page[2] for page in pages].count("error") == 3
    assert elapsed < 10


@pytest.mark.django_db(transaction=True)
def test_dashboard_write_during_outage_is_not_lost(
    client: Client, redis_server: RedisServer
) -> None:
    area = factories.location()
    factories.equipment(area)

    with outage_settings("django-redis", redis_server.port, OUTAGE_RETRY_INTERVAL=1):
        assert total_on_page(client)[1:] == (1, "miss")
        # A hung server: the entry survives in it, but this write's version
        # bump cannot reach it.
        redis_server.pause()
        factories.equipment(area)
        during = total_on_page(client)
        redis_server.resume()
        time.sleep(1.1)
        after = [total_on_page(client) for _ in range(2)]

    assert during[:2] == (200, 2)
    assert after == [(200, 2, "miss"), (200, 2, "hit")]


@pytest.mark.django_db(transaction=True)
def test_release_on_django_redis_is_compare_and_delete(
    redis_server: RedisServer,
) -> None:
    from django.core.cache import caches

    from maintenance_perf.cache import _release

    with outage_settings("django-redis", redis_server.port):
        cache = caches["dashboards"]
        cache.set("lock", "theirs", 30)
        _release(cache, "lock", "mine")
        kept = cache.get("lock")
        _release(cache, "lock", "theirs")

        assert (kept, cache.get("lock")) == ("theirs", None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dashboard_cache_failing_while_storing_still_returns_data(
    redis_server: RedisServer, backend: str
) -> None:
    from maintenance_perf.cache import get_or_compute

    def compute() -> str:
        redis_server.pause()
        return "computed"

    with outage_settings(backend, redis_server.port):
        result = get_or_compute("d", None, [], compute)
    redis_server.resume()

    assert (result.data, result.status) == ("computed", "error")
    assert counters.get("d")["errors"] == 1


def test_dashboard_cache_failing_while_waiting_computes(
    redis_server: RedisServer,
) -> None:
    import threading

    from django.core.cache import caches

    from maintenance_perf.cache import entry_key, get_or_compute

    with outage_settings("django-redis", redis_server.port, STAMPEDE_WAIT=5):
        caches["dashboards"].set(f"{entry_key('d', None)}:lock", "another worker", 30)
        threading.Timer(0.2, redis_server.pause).start()
        started = time.monotonic()
        result = get_or_compute("d", None, [], lambda: "computed")
        waited = time.monotonic() - started
    redis_server.resume()

    assert (result.data, result.status) == ("computed", "error")
    assert waited < 4


@pytest.mark.django_db(transaction=True)
def test_dashboard_write_while_cache_rests_is_not_lost(
    client: Client, tmp_path: Path
) -> None:
    from maintenance_perf.cache import get_section

    server = RedisServer(tmp_path)
    area = factories.location()
    factories.equipment(area)

    with outage_settings("django-redis", server.port, OUTAGE_RETRY_INTERVAL=1):
        server.start()
        assert total_on_page(client)[1:] == (1, "miss")
        server.pause()
        resting = [total_on_page(client)[2] for _ in range(3)]
        # Resting now: this write's bump is not even tried.
        factories.equipment(area)
        section = get_section("any")
        server.resume()
        time.sleep(1.1)
        after = total_on_page(client)
    server.stop()

    assert resting == ["error", "error", "error"]
    assert section is None
    assert after == (200, 2, "miss")


@pytest.mark.django_db(transaction=True)
def test_cached_page_renders_when_the_cache_fails_before_it_is_stored(
    redis_server: RedisServer,
) -> None:
    from django.test import RequestFactory

    from tests import page_views

    factories.equipment(factories.location())

    class PausingDashboard(page_views.PageDashboard):
        """Shares the data entry; its cache hangs once the data is read."""

        cache_name = "tests.page_views.PageDashboard"

        def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
            context = super().get_context_data(**kwargs)
            redis_server.pause()
            return context

    first = page_views.PageDashboard.as_view(template_name="form.html")
    second = PausingDashboard.as_view(template_name="location.html")
    with (
        outage_settings("django-redis", redis_server.port),
        override_settings(TEMPLATES=page_views.TEMPLATES),
    ):
        first(RequestFactory().get("/")).render()
        response = second(RequestFactory().get("/"))
        response.render()
    redis_server.resume()

    assert response.status_code == 200
    assert response.content.decode().endswith(
        "<b>1</b></main><footer>cache hit</footer>"
    )
