"""The maintenance tasks run by a real Celery worker on a real Redis broker.

The worker runs in a thread of the test process, so it sees the test
database (SQLite's in-memory one is shared between threads, not processes)
and the same cache the tests set locks in.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core.cache import caches
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

import maintenance_perf.tasks
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity
from maintenance_perf import maintenance
from maintenance_perf.locks import lock_key
from tests.task_helpers import require_redis, schedules

if TYPE_CHECKING:
    from collections.abc import Iterator

    from celery.result import AsyncResult

GENERATE = "maintenance_perf.generate_scheduled_maintenance"
OVERDUE = "maintenance_perf.check_overdue_maintenance"
EVENTS = "maintenance_perf.generate_maintenance_events"


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    """A Celery app on the test Redis, with the maintenance tasks registered.

    Results come back through memory, which the worker thread shares with
    the test: with the Redis result backend, ``get()`` timed out in the
    Django 4.2 environment although the task had run.
    """
    url = require_redis()
    app = Celery(
        "mperf-tests", broker=url, backend="cache+memory://", set_as_current=False
    )
    app.conf.update(
        broker_connection_retry_on_startup=False,
        task_default_queue="mperf-tests",
        result_expires=60,
    )
    assert maintenance_perf.tasks.generate_scheduled_maintenance.name == GENERATE
    app.finalize()
    yield app
    app.close()


def close_thread_connections(**kwargs: Any) -> None:
    """Close the connections a worker thread opened to an in-memory SQLite.

    Django never closes those (closing the last one would drop the
    database); the test thread keeps its own open, so the worker's can go.
    """
    for connection in connections.all(initialized_only=True):
        if connection.vendor == "sqlite" and connection.is_in_memory_db():
            BaseDatabaseWrapper.close(connection)


@pytest.fixture
def worker(celery_app: Celery) -> Iterator[Celery]:
    """Two worker threads consuming the app's queue."""
    task_postrun.connect(close_thread_connections)
    try:
        with start_worker(
            celery_app, pool="threads", concurrency=2, perform_ping_check=False
        ):
            yield celery_app
    finally:
        task_postrun.disconnect(close_thread_connections)


def result_of(result: AsyncResult[Any]) -> dict[str, Any]:
    value: dict[str, Any] = result.get(timeout=20)
    return value


@pytest.mark.django_db(transaction=True)
def test_worker_runs_every_task_and_creates_the_rows(worker: Celery) -> None:
    schedules(5, timezone.localdate())

    generated = result_of(worker.tasks[GENERATE].delay(advance_days=0))
    events = result_of(worker.tasks[EVENTS].delay())
    overdue = result_of(worker.tasks[OVERDUE].delay())

    assert generated["counts"] == {"schedules": 5, "created": 5, "existing": 0}
    assert events["counts"] == {"created": 5}
    assert overdue == {
        "task": "check-overdue-maintenance",
        "counts": {"marked": 0},
        "skipped": "",
        "seconds": overdue["seconds"],
    }
    assert MaintenanceActivity.objects.count() == 5
    assert CalendarEvent.objects.filter(event_type="maintenance").count() == 5


@pytest.mark.django_db(transaction=True)
def test_worker_two_concurrent_runs_create_no_duplicates(worker: Celery) -> None:
    schedules(20, timezone.localdate())
    real_plan = maintenance._plan_activities

    def slow_plan(*args: Any) -> Any:
        # Long enough that the second run starts while the first holds the lock.
        time.sleep(0.5)
        return real_plan(*args)

    with mock.patch.object(maintenance, "_plan_activities", slow_plan):
        sent = [worker.tasks[GENERATE].delay() for _ in range(2)]
        results = [result_of(result) for result in sent]

    created = sorted(result["counts"].get("created", 0) for result in results)
    skipped = [result["skipped"] for result in results if result["skipped"]]
    assert created == [0, 20]
    assert len(skipped) == 1
    assert skipped[0].startswith("another run holds its lock")
    assert MaintenanceActivity.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_worker_runs_once_a_dead_owners_lock_expires(worker: Celery) -> None:
    schedules(3, timezone.localdate())
    # A worker that died holding the lock, which it took for one second.
    caches["default"].set(lock_key("generate-scheduled-maintenance"), "dead", 1)

    blocked = result_of(worker.tasks[GENERATE].delay())
    time.sleep(1.1)
    proceeded = result_of(worker.tasks[GENERATE].delay())

    assert blocked["skipped"].startswith("another run holds its lock")
    assert proceeded["counts"]["created"] == 3
    assert MaintenanceActivity.objects.count() == 3
