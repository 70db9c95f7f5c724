"""Data builders and service lookups shared by the maintenance task tests."""

from __future__ import annotations

import math
import os
import socket
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from equipment.models import Equipment
from maintenance.models import MaintenanceActivity, MaintenanceSchedule
from tests import factories
from tests.conftest import IN_CI

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable

    from django.db import models

#: Redis for the Celery broker and the lock tests' caches. Its keys are
#: flushed with the cache before each test, so each test starts its own worker.
TEST_REDIS_URL = (
    os.environ.get("MPERF_TEST_BROKER_URL")
    or os.environ.get("REDIS_URL")
    or "redis://127.0.0.1:6379/13"
)


def require_redis() -> str:
    """Return the test Redis URL; skip (fail under CI) if nothing answers."""
    parts = urlsplit(TEST_REDIS_URL)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2
        ).close()
    except OSError as error:
        message = (
            f"Redis at {TEST_REDIS_URL} is unreachable ({error}); the Celery and "
            "lock tests need it (set MPERF_TEST_BROKER_URL to another one)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return TEST_REDIS_URL


def schedules(
    count: int,
    next_due: datetime.date,
    frequency_days: int = 30,
    **fields: Any,
) -> list[MaintenanceSchedule]:
    """Create ``count`` schedules on ten pieces of equipment, in bulk."""
    area = factories.location()
    machines = Equipment.objects.bulk_create(
        [
            Equipment(name=f"Pump {n}", code=f"P-{area.pk}-{n}", location=area)
            for n in range(10)
        ]
    )
    created = MaintenanceSchedule.objects.bulk_create(
        [
            MaintenanceSchedule(
                title=f"Service {n}",
                equipment=machines[n % len(machines)],
                frequency_days=frequency_days,
                next_due_date=next_due,
                **fields,
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    return list(MaintenanceSchedule.objects.filter(pk__in=[s.pk for s in created]))


def statements(work: Callable[[], Any]) -> tuple[Any, Counter[str]]:
    """Run ``work``; return its result and its statements counted by kind.

    Django logs BEGIN and COMMIT too; on PostgreSQL a task's own transaction
    also sets its isolation level (SET).
    """
    with CaptureQueriesContext(connection) as captured:
        result = work()
    kinds = Counter(query["sql"].split(None, 1)[0].upper() for query in captured)
    return result, kinds


def in_transaction(**data_statements: int) -> Counter[str]:
    """Return the statements of one task transaction holding these ones."""
    control = {"BEGIN": 1, "COMMIT": 1}
    if connection.vendor == "postgresql":
        control["SET"] = 1
    return Counter({**control, **data_statements})


def insert_batches(model: type[models.Model], rows: int, batch_size: int) -> int:
    """Return how many INSERTs ``bulk_create`` needs for ``rows`` rows."""
    if not rows:
        return 0
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    sample = [model()] * rows
    limit = connection.ops.bulk_batch_size(fields, sample)
    return math.ceil(rows / min(batch_size, max(limit, 1)))


def activities_of(schedule: MaintenanceSchedule) -> list[MaintenanceActivity]:
    return list(
        MaintenanceActivity.objects.filter(schedule=schedule).order_by(
            "scheduled_start"
        )
    )
