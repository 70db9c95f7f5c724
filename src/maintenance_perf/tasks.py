"""The maintenance tasks as Celery tasks, thin wrappers over plain functions.

Each runs under its lock (see :mod:`maintenance_perf.locks`) and returns
:meth:`TaskResult.as_dict() <maintenance_perf.maintenance.TaskResult.as_dict>`,
which says what it did or why it skipped. A host's Celery app finds them
with ``app.autodiscover_tasks()``, since ``maintenance_perf`` is an
installed app.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from maintenance_perf.maintenance import (
    DEFAULT_ADVANCE_DAYS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_DAYS_AHEAD,
    run_task,
)


@shared_task(name="maintenance_perf.generate_scheduled_maintenance")
def generate_scheduled_maintenance(
    advance_days: int = DEFAULT_ADVANCE_DAYS, batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[str, Any]:
    """Create the next activities of every active schedule that is due."""
    return run_task(
        "generate-scheduled-maintenance",
        advance_days=advance_days,
        batch_size=batch_size,
    ).as_dict()


@shared_task(name="maintenance_perf.check_overdue_maintenance")
def check_overdue_maintenance() -> dict[str, Any]:
    """Mark scheduled activities whose scheduled end has passed as overdue."""
    return run_task("check-overdue-maintenance").as_dict()


@shared_task(name="maintenance_perf.generate_maintenance_events")
def generate_maintenance_events(
    days_ahead: int = DEFAULT_DAYS_AHEAD, batch_size: int = DEFAULT_BATCH_SIZE
) -> dict[str, Any]:
    """Create the missing calendar events of upcoming maintenance activities."""
    return run_task(
        "generate-maintenance-events", days_ahead=days_ahead, batch_size=batch_size
    ).as_dict()
