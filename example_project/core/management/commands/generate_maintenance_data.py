"""``manage.py generate_maintenance_data``: make up a large, repeatable data set."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.generator import Request, plan_generated
from core.loading import DEFAULT_BATCH_SIZE, ProgressStream, load_plan, parse_today

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Generate locations (plants with up to five areas), equipment, "
        "maintenance activities in every status (a year of completed work, open "
        "work over the next six weeks, some overdue), schedules and calendar "
        "events. The same arguments give the same rows; keys start with "
        "'generated:' (codes with 'GEN-'), so a rerun creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--locations",
            type=int,
            default=50,
            help="Locations in all, sites and areas (default 50).",
        )
        parser.add_argument(
            "--equipment",
            type=int,
            default=5000,
            help="Pieces of equipment (default 5,000).",
        )
        parser.add_argument(
            "--activities",
            type=int,
            default=50000,
            help="Maintenance activities (default 50,000).",
        )
        parser.add_argument(
            "--schedules",
            type=int,
            help="Maintenance schedules (default: one per piece of equipment).",
        )
        parser.add_argument(
            "--events",
            type=int,
            help="Calendar events (default: one per five activities).",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed (default 1)."
        )
        parser.add_argument(
            "--today",
            help="Date (YYYY-MM-DD) the data is planned around; default: today.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per bulk insert (default {DEFAULT_BATCH_SIZE:,}).",
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="Do not draw progress bars on stderr.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError(
                f"--batch-size {batch_size} is not positive; "
                f"use a number of rows such as {DEFAULT_BATCH_SIZE}"
            )
        equipment = options["equipment"]
        activities = options["activities"]
        schedules = options["schedules"]
        events = options["events"]

        try:
            request = Request(
                locations=options["locations"],
                equipment=equipment,
                activities=activities,
                schedules=equipment if schedules is None else schedules,
                events=max(1, activities // 5) if events is None else events,
                seed=options["seed"],
                today=parse_today(options["today"], timezone.localdate()),
            )
            request.check()
        except ValueError as error:
            raise CommandError(str(error)) from None
        try:
            plan = plan_generated(request, timezone.get_current_timezone())
        except OverflowError:
            raise CommandError(
                f"--today {request.today} is too near the calendar's ends for a "
                "year of history; pick a date nearer the present"
            ) from None

        progress = None if options["no_progress"] else ProgressStream(self.stderr)
        results = load_plan(plan, batch_size=batch_size, progress=progress)

        for result in results:
            self.stdout.write(str(result))
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated seed {request.seed} around {request.today} "
                f"in {time.perf_counter() - started:.1f} s."
            )
        )
