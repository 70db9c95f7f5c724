"""``manage.py import_azure_pdm FOLDER``: load the public Azure PdM data set."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.utils import timezone

from core.azure_pdm import InvalidDataSet, plan_import, read_data_set
from core.loading import DEFAULT_BATCH_SIZE, ProgressStream, load_plan, parse_today

logger = logging.getLogger(__name__)

MAPPING = """\
How the data set maps onto the site (docs/example_data.rst has the details):

  locations     10 sites "Site 01".."Site 10" (code S01), 5 areas each
                ("Site 01 / Area A", code S01-A); 20 machines per area in
                machine order (machines 1-20 in S01-A, 981-1000 in S10-E).
  equipment     machine 1 is "Machine 0001", code AZ-0001, category = model,
                commissioned = today minus age years; in maintenance when its
                latest error is at most 7 days older than the newest record
                and no maint.csv replacement followed it, else operational.
  activities    each maint.csv row is a completed preventive replacement
                (2 h, medium priority); one matching a failures.csv row
                (same datetime, machine, component) is a corrective repair
                instead (6 h, high priority), and so is each failure with no
                matching maint.csv row.
  schedules     one per machine and component replaced at least twice,
                repeating every median gap between its replacements, rounded
                to a multiple of 15 days; each with its next planned activity
                (2 h) and calendar event, overdue when that ends before the
                newest record.
  events        each errors.csv row is an error event on the calendar,
                completed when a maint.csv replacement on the machine
                followed it.
  dates         shifted by whole days so the newest record falls on --today;
                the hour of day stays (UTC).

Every row has a fixed key (equipment code, or external_ref such as
azure-pdm:maint:1:comp4:2014-07-01T06), so a rerun creates nothing; rows
that exist are left as they are, even with another --today.
"""


class _Formatter(DjangoHelpFormatter):
    """Wrap the description but keep the mapping table's own line breaks."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:
            return super()._fill_text(text, width, indent)
        return "".join(indent + line for line in text.splitlines(keepends=True))


class Command(BaseCommand):
    help = (
        "Import the Azure predictive-maintenance data set (Microsoft, CC BY 4.0): "
        "1,000 machines with their replacements, failures and errors, as "
        "locations, equipment, maintenance activities, schedules and calendar "
        "events. All files are checked before anything is written, and "
        "everything is written in one transaction."
    )

    def create_parser(
        self, prog_name: str, subcommand: str, **kwargs: Any
    ) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = MAPPING
        parser.formatter_class = _Formatter
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "folder",
            type=Path,
            help="Folder holding machines.csv, maint.csv, failures.csv, errors.csv.",
        )
        parser.add_argument(
            "--today",
            help="Date (YYYY-MM-DD) the newest record moves to; default: today.",
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
        try:
            today = parse_today(options["today"], timezone.localdate())
        except ValueError as error:
            raise CommandError(str(error)) from None
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError(
                f"--batch-size {batch_size} is not positive; "
                f"use a number of rows such as {DEFAULT_BATCH_SIZE}"
            )

        folder = Path(options["folder"])
        try:
            data = read_data_set(folder)
        except InvalidDataSet as error:
            raise CommandError(str(error)) from None
        try:
            prepared = plan_import(data, today)
        except OverflowError:
            raise CommandError(
                f"--today {today} moves the data set's dates out of the "
                "calendar's range; pick a date nearer the present"
            ) from None

        progress = None if options["no_progress"] else ProgressStream(self.stderr)
        results = load_plan(prepared.plan, batch_size=batch_size, progress=progress)

        for result in results:
            self.stdout.write(str(result))
        self.stdout.write(
            f"In the data set: {prepared.in_maintenance:,} pieces of equipment in "
            f"maintenance, {prepared.planned_overdue:,} of "
            f"{len(prepared.plan.schedules):,} planned activities overdue"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {folder} in {time.perf_counter() - started:.1f} s, "
                f"dates shifted by {prepared.shift.days:+,} days so the newest "
                f"record is at {prepared.now:%Y-%m-%d %H:%M} UTC."
            )
        )
