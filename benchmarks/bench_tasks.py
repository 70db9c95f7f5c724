"""Time the maintenance tasks against the per-row loops they replace.

Run from the repository root; it uses the example project's settings, so
``DATABASE_URL`` picks the database (default: a SQLite file in the system's
temporary folder, created and filled on first use)::

    .venv/bin/python benchmarks/bench_tasks.py --schedules 10000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mperf_bench \\
        .venv/bin/python benchmarks/bench_tasks.py --schedules 10000

The data comes from ``generate_maintenance_data`` (one schedule per two
pieces of equipment, activities and events in every status). Every timed run
happens in a transaction that is rolled back, so each starts from the same
rows; the loops and the tasks are checked to write the same number of rows.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "example_project"), str(REPO / "src")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")
os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{Path(tempfile.gettempdir()) / 'mperf_bench.sqlite3'}"
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from events.models import CalendarEvent  # noqa: E402
from maintenance.models import MaintenanceActivity, MaintenanceSchedule  # noqa: E402
from maintenance_perf.maintenance import (  # noqa: E402
    DEFAULT_ADVANCE_DAYS,
    DEFAULT_DAYS_AHEAD,
    check_overdue_maintenance,
    generate_maintenance_events,
    generate_scheduled_maintenance,
    occurrences,
)
from maintenance_perf.monitoring import count_queries  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

STATUS = MaintenanceActivity.STATUS


# --- the per-row loops a maintenance site typically runs ---------------------


def generate_next_activity(
    schedule: MaintenanceSchedule, now: datetime.datetime
) -> int:
    """One schedule's next activities, the way a model method does it.

    It reads the schedule's planned activities first, to create none twice:
    one query per schedule even when nothing is due (the seed's loop ran
    three), then one per activity created and one to save the schedule.
    """
    zone = timezone.get_default_timezone()
    first = datetime.datetime.combine(schedule.next_due_date, datetime.time(), zone)
    planned = set(
        schedule.activities.filter(scheduled_start__gte=first).values_list(
            "scheduled_start", flat=True
        )
    )
    if schedule.frequency_days < 1:
        return 0
    dates, next_due = occurrences(
        schedule.next_due_date,
        schedule.frequency_days,
        timezone.localdate(now),
        DEFAULT_ADVANCE_DAYS,
    )
    if not dates:
        return 0

    created = 0
    for day in dates:
        start = datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
        end = datetime.datetime.combine(
            day + datetime.timedelta(days=1), datetime.time(), tzinfo=zone
        )
        if start not in planned:
            MaintenanceActivity.objects.create(
                title=schedule.title,
                equipment_id=schedule.equipment_id,
                schedule=schedule,
                activity_type=schedule.activity_type,
                status=STATUS.scheduled,
                scheduled_start=start,
                scheduled_end=end,
            )
            created += 1
    schedule.next_due_date = next_due
    schedule.save()
    return created


def loop_generate(now: datetime.datetime) -> int:
    return sum(
        generate_next_activity(schedule, now)
        for schedule in MaintenanceSchedule.objects.filter(is_active=True)
    )


def loop_overdue(now: datetime.datetime) -> int:
    marked = 0
    for activity in MaintenanceActivity.objects.filter(
        status=STATUS.scheduled, scheduled_end__lt=now
    ):
        activity.status = STATUS.overdue
        activity.save()
        marked += 1
    return marked


def loop_events(now: datetime.datetime) -> int:
    created = 0
    for activity in MaintenanceActivity.objects.filter(
        status__in=[STATUS.scheduled, STATUS.in_progress],
        scheduled_end__gte=now,
        scheduled_start__lt=now + datetime.timedelta(days=DEFAULT_DAYS_AHEAD),
    ):
        if not activity.calendar_events.filter(event_type="maintenance").exists():
            CalendarEvent.objects.create(
                title=activity.title,
                event_type="maintenance",
                event_date=activity.scheduled_start,
                equipment_id=activity.equipment_id,
                activity=activity,
            )
            created += 1
    return created


# --- measuring ----------------------------------------------------------------


def measure(
    work: Callable[[], Any], repeat: int, before: Callable[[], Any] | None
) -> tuple[float, int, Any]:
    """Return the median seconds, the statements of one run, and its result.

    ``before`` runs first, untimed, in the same rolled-back transaction.
    """
    times = []
    statements = 0
    for _ in range(repeat):
        with transaction.atomic():
            if before is not None:
                before()
            # Every statement counts, savepoints included.
            with count_queries(connection.alias) as counted:
                started = time.perf_counter()
                result = work()
                times.append(time.perf_counter() - started)
            statements = counted.count
            transaction.set_rollback(True)
    return statistics.median(times), statements, result


def written(result: Any) -> int:
    if isinstance(result, int):
        return result
    return int(result.get("created", result.get("marked", 0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    call_command("migrate", verbosity=0)
    if MaintenanceSchedule.objects.count() < options.schedules:
        call_command(
            "generate_maintenance_data",
            locations=50,
            equipment=options.schedules // 2,
            activities=options.schedules * 5,
            schedules=options.schedules,
            seed=1,
            no_progress=True,
            verbosity=0,
        )
    now = timezone.now()
    # Two days on, some planned work has passed its end.
    later = now + datetime.timedelta(days=2)
    tasks: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "generate-scheduled-maintenance": (
            lambda: loop_generate(now),
            lambda: generate_scheduled_maintenance(now=now),
        ),
        "check-overdue-maintenance": (
            lambda: loop_overdue(later),
            lambda: check_overdue_maintenance(now=later),
        ),
        "generate-maintenance-events": (
            lambda: loop_events(now),
            lambda: generate_maintenance_events(now=now),
        ),
    }

    print(
        f"{connection.vendor}, {MaintenanceSchedule.objects.count():,} schedules, "
        f"{MaintenanceActivity.objects.count():,} activities, median of "
        f"{options.repeat} runs, each rolled back"
    )
    print(
        f"{'task':40} {'rows':>6} {'loop ms':>9} {'queries':>8} "
        f"{'task ms':>8} {'queries':>8} {'ratio':>8}"
    )
    # Inside the benchmark's transaction the task's own becomes a savepoint:
    # two statements more than a worker's run, and no SET TRANSACTION.
    # The first run after data arrived has work to do; the next ones, every
    # two hours, find little or nothing, which is the common case.
    for run in ("first run", "next run"):
        for name, (loop, task) in tasks.items():
            before = task if run == "next run" else None
            loop_time, loop_queries, loop_result = measure(loop, options.repeat, before)
            task_time, task_queries, task_result = measure(task, options.repeat, before)
            if written(loop_result) != written(task_result):
                raise SystemExit(
                    f"{name}: the loop wrote {written(loop_result)} rows, the task "
                    f"{written(task_result)}"
                )
            print(
                f"{name + ', ' + run:40} {written(task_result):>6} "
                f"{loop_time * 1000:>9.1f} {loop_queries:>8} "
                f"{task_time * 1000:>8.1f} {task_queries:>8} "
                f"{loop_time / task_time:>7.1f}x"
            )


if __name__ == "__main__":
    main()
