"""Time the dashboard and the overdue check before and after the index plan.

Run from the repository root, against a PostgreSQL database of its own:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mperf_bench \\
        .venv/bin/python benchmarks/bench_indexes.py --runs 5

The script creates the database if it is missing, migrates it, loads the
data set (200,000 activities by default, from ``generate_maintenance_data`` or
with ``--data bulk`` from the script's own inserts; a rerun reuses it), then
for each state of the plan (its indexes dropped, then built again, both
through ``maintenance_perf.operations``) prints the median of ``--runs``
timings of:

* the dashboard at ``/``, cold: the cache is cleared before each request;
* the slow reference dashboard at ``/naive/`` (``--naive-runs`` times);
* the overdue check's selection: the activities still scheduled after
  their scheduled end, as a ``SELECT``;
* the overdue check itself, ``check_overdue_maintenance()``, one ``UPDATE``,
  in a transaction that is rolled back so that every run does the same work;
  and the same check once caught up: run again right after it marked the
  backlog, as every run of the beat schedule but the first finds it.

``--explain`` also prints the plan PostgreSQL picks for the overdue check and
for the dashboard's slowest query shape, before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/mperf_bench"


class Rollback(Exception):
    """Raised to undo a timed run's writes."""


def main() -> None:
    """Parse the arguments, prepare the data and print the figures."""
    arguments = parse_arguments()
    os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    ensure_database(os.environ["DATABASE_URL"])
    setup_django()

    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL to postgres://...")

    call_command("migrate", verbosity=0)
    generate(arguments)
    results = {}
    for state in ("before", "after"):
        set_plan(built=state == "after")
        results[state] = measure(arguments.runs, arguments.naive_runs)
        if arguments.explain:
            explain(state)

    report(results, arguments)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure")
    parser.add_argument(
        "--naive-runs", type=int, default=3, help="runs of the slow /naive/ page"
    )
    parser.add_argument("--locations", type=int, default=200)
    parser.add_argument("--equipment", type=int, default=20_000)
    parser.add_argument("--activities", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--data",
        choices=["generator", "bulk"],
        default="generator",
        help="load the data with generate_maintenance_data, or with this "
        "script's own bulk inserts",
    )
    parser.add_argument("--explain", action="store_true", help="print query plans")
    return parser.parse_args()


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` unless it exists."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    ) as server:
        exists = server.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            server.execute(f'CREATE DATABASE "{name}"')


def setup_django() -> None:
    sys.path[:0] = [str(REPO / "example_project"), str(REPO / "src")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")
    import django

    django.setup()


def generate(arguments: argparse.Namespace) -> None:
    """Load the data set once; a rerun finds it and adds nothing."""
    from django.core.management import call_command
    from django.db import connection

    from maintenance.models import MaintenanceActivity

    if MaintenanceActivity.objects.count() < arguments.activities:
        if arguments.data == "generator":
            call_command(
                "generate_maintenance_data",
                "--locations",
                str(arguments.locations),
                "--equipment",
                str(arguments.equipment),
                "--activities",
                str(arguments.activities),
                "--seed",
                str(arguments.seed),
                "--no-progress",
            )
        else:
            bulk_load(arguments)
    # Fresh statistics and a visibility map, as autovacuum would leave them.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def bulk_load(arguments: argparse.Namespace) -> None:
    """Insert a data set of the standard schema's shape with bulk_create."""
    import datetime
    import random

    from django.utils import timezone

    from core.models import Location
    from equipment.models import Equipment
    from events.models import CalendarEvent
    from maintenance.models import MaintenanceActivity, MaintenanceSchedule

    rng = random.Random(arguments.seed)
    now = timezone.now()
    day = datetime.timedelta(days=1)
    batch = 5_000

    sites = Location.objects.bulk_create(
        Location(name=f"Site {n}", code=f"BENCH-S{n}")
        for n in range(max(1, arguments.locations // 5))
    )
    areas = Location.objects.bulk_create(
        Location(name=f"Area {n}", code=f"BENCH-A{n}", parent=sites[n % len(sites)])
        for n in range(arguments.locations - len(sites))
    )
    statuses = [value for value, _ in Equipment.STATUS]
    equipment = Equipment.objects.bulk_create(
        (
            Equipment(
                name=f"Machine {n}",
                code=f"BENCH-E{n}",
                location=rng.choice(areas or sites),
                status=rng.choices(statuses, weights=[85, 6, 5, 4])[0],
            )
            for n in range(arguments.equipment)
        ),
        batch_size=batch,
    )
    MaintenanceSchedule.objects.bulk_create(
        (
            MaintenanceSchedule(
                title=f"Service {machine.code}",
                equipment=machine,
                frequency_days=rng.choice([7, 30, 90, 365]),
                next_due_date=(now + rng.randint(-10, 60) * day).date(),
                is_active=rng.random() < 0.95,
            )
            for machine in equipment
        ),
        batch_size=batch,
    )

    def activity(n: int) -> MaintenanceActivity:
        start = now + rng.uniform(-365, 42) * day
        end = start + datetime.timedelta(hours=rng.uniform(1, 8))
        if end < now:
            # A few past activities are still "scheduled": the overdue check's work.
            status = rng.choices(
                ["completed", "cancelled", "overdue", "scheduled"],
                weights=[83, 5, 10, 2],
            )[0]
        elif start < now:
            status = "in_progress"
        else:
            status = rng.choices(["scheduled", "cancelled"], weights=[95, 5])[0]
        done = status == "completed"
        return MaintenanceActivity(
            title=f"Work order {n}",
            equipment=rng.choice(equipment),
            status=status,
            scheduled_start=start,
            scheduled_end=end,
            actual_start=start if done else None,
            actual_end=end if done else None,
        )

    MaintenanceActivity.objects.bulk_create(
        (activity(n) for n in range(arguments.activities)), batch_size=batch
    )
    CalendarEvent.objects.bulk_create(
        (
            CalendarEvent(
                title=f"Event {n}",
                event_date=(when := now + rng.uniform(-365, 42) * day),
                equipment=rng.choice(equipment),
                is_completed=when < now and rng.random() < 0.9,
            )
            for n in range(arguments.activities // 5)
        ),
        batch_size=batch,
    )


def set_plan(*, built: bool) -> None:
    """Drop or build every planned index, concurrently, then analyze."""
    from django.db import connection

    from maintenance_perf.indexes import build_plan
    from maintenance_perf.operations import add_index, remove_index

    change = add_index if built else remove_index
    with connection.schema_editor(atomic=False) as editor:
        for planned in build_plan().indexes:
            change(editor, planned.model, planned.index)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(runs: int, naive_runs: int) -> dict[str, list[float]]:
    """Time the cold dashboards and the overdue check."""
    from django.core.cache import caches
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone

    from maintenance.models import MaintenanceActivity
    from maintenance_perf.conf import conf
    from maintenance_perf.maintenance import check_overdue_maintenance

    client = Client()

    def page(path: str) -> Callable[[], None]:
        def get() -> None:
            caches[conf.cache_alias].clear()
            response = client.get(path)
            assert response.status_code == 200, response.status_code

        return get

    def overdue_selection() -> None:
        list(
            MaintenanceActivity.objects.filter(
                status="scheduled", scheduled_end__lt=timezone.now()
            )
            .order_by()
            .values_list("pk", flat=True)
        )

    def overdue_check() -> None:
        try:
            with transaction.atomic():
                check_overdue_maintenance()
                raise Rollback
        except Rollback:
            pass

    def steady_check() -> float:
        # With the backlog marked, a run finds only what passed its end since.
        try:
            with transaction.atomic():
                check_overdue_maintenance()
                started = time.perf_counter()
                check_overdue_maintenance()
                elapsed = time.perf_counter() - started
                raise Rollback
        except Rollback:
            return elapsed

    return {
        "steady": [steady_check() for _ in range(runs)],
        "dashboard": timed(page("/"), runs),
        "naive": timed(page("/naive/"), naive_runs),
        "selection": timed(overdue_selection, runs),
        "overdue": timed(overdue_check, runs),
    }


def timed(work: Callable[[], Any], runs: int) -> list[float]:
    work()  # warms the connection and the buffer cache
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return timings


def explain(state: str) -> None:
    """Print which scans PostgreSQL picks for the dashboard and the overdue check."""
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from maintenance.models import MaintenanceActivity
    from maintenance_perf.conf import conf

    caches[conf.cache_alias].clear()
    with CaptureQueriesContext(connection) as captured:
        Client().get("/")
    overdue = (
        MaintenanceActivity.objects.filter(
            status="scheduled", scheduled_end__lt=timezone.now()
        )
        .order_by()
        .values("pk")
    )
    statements = {"overdue check": overdue.query.sql_with_params()}
    for number, query in enumerate(captured.captured_queries, 1):
        if query["sql"].startswith("SELECT"):
            statements[f"dashboard query {number}"] = (query["sql"], None)

    print(f"\nScans chosen {state} the plan:")
    for title, (sql, params) in statements.items():
        with connection.cursor() as cursor:
            cursor.execute(
                f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {sql}", params
            )
            plan = [row[0].strip() for row in cursor.fetchall()]
        scans = [line.lstrip("-> ") for line in plan if " Scan " in f" {line}"]
        total = plan[-1]
        print(f"  {title}: {sql[:90]}...")
        for scan in scans:
            print(f"      {scan}")
        print(f"      {total}")


def report(
    results: dict[str, dict[str, list[float]]], arguments: argparse.Namespace
) -> None:
    from core.models import Location
    from equipment.models import Equipment
    from maintenance.models import MaintenanceActivity

    print(
        f"\nPostgreSQL, {Location.objects.count():,} locations, "
        f"{Equipment.objects.count():,} equipment, "
        f"{MaintenanceActivity.objects.count():,} activities; median of "
        f"{arguments.runs} runs (/naive/: {arguments.naive_runs})"
    )
    print(f"{'':24}{'before':>12}{'after':>12}{'speed-up':>10}")
    for figure, label, unit, factor in (
        ("dashboard", "dashboard /, cold", "ms", 1000),
        ("naive", "dashboard /naive/", "ms", 1000),
        ("selection", "overdue rows, SELECT", "ms", 1000),
        ("overdue", "overdue check, UPDATE", "ms", 1000),
        ("steady", "  once caught up", "ms", 1000),
    ):
        before = statistics.median(results["before"][figure]) * factor
        after = statistics.median(results["after"][figure]) * factor
        print(
            f"{label:24}{before:>9.1f} {unit}{after:>9.1f} {unit}"
            f"{before / after:>9.1f}x"
        )


if __name__ == "__main__":
    main()
