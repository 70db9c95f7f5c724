"""``manage.py maintenance_perf_run_task``: run maintenance tasks once, now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maintenance_perf.conf import conf
from maintenance_perf.maintenance import run_task, summary
from maintenance_perf.schedule import (
    TASK_KWARGS,
    TASKS,
    accepted_values,
    is_accepted,
)

#: Command-line options that become task arguments, by argument name.
ARGUMENTS = {
    "advance_days": "--advance-days",
    "days_ahead": "--days-ahead",
    "batch_size": "--batch-size",
}


class Command(BaseCommand):
    help = (
        "Run maintenance tasks in this process, under the same lock the workers "
        "take, and print what each did. Arguments not given on the command line "
        "come from the task's MAINTENANCE_PERF['BEAT'] entry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "tasks", nargs="*", metavar="TASK", help=f"Any of: {', '.join(TASKS)}."
        )
        parser.add_argument("--all", action="store_true", help="Run every task.")
        parser.add_argument(
            "--advance-days",
            type=int,
            help="generate-scheduled-maintenance: days ahead of today to plan.",
        )
        parser.add_argument(
            "--days-ahead",
            type=int,
            help="generate-maintenance-events: days ahead of now to cover.",
        )
        parser.add_argument("--batch-size", type=int, help="Rows per INSERT.")
        parser.add_argument(
            "--no-lock",
            action="store_true",
            help="Run even if a worker holds the task's lock.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # A task named twice runs once, where it was first named.
        names = list(dict.fromkeys(TASKS if options["all"] else options["tasks"]))
        unknown = [name for name in names if name not in TASKS]
        if unknown or not names:
            raise CommandError(
                f"name one or more tasks, or --all; tasks: {', '.join(TASKS)}"
                + (f" (not {', '.join(unknown)})" if unknown else "")
            )
        given = {key: options[key] for key in ARGUMENTS if options[key] is not None}
        for key, value in given.items():
            if not any(key in TASK_KWARGS[name] for name in names):
                raise CommandError(
                    f"{ARGUMENTS[key]} applies to none of: {', '.join(names)}"
                )
            bounds = _bounds(key)
            if not is_accepted(value, bounds):
                raise CommandError(
                    f"{ARGUMENTS[key]} must be a whole number "
                    f"{accepted_values(bounds)}, not {value}"
                )

        for name in names:
            configured = conf.beat[name]["kwargs"]
            kwargs = {
                key: value
                for key, value in {
                    **(configured if isinstance(configured, dict) else {}),
                    **given,
                }.items()
                if key in TASK_KWARGS[name]
            }
            try:
                result = run_task(name, lock=not options["no_lock"], **kwargs)
            except ValueError as error:
                raise CommandError(str(error)) from error
            style = self.style.WARNING if result.skipped else self.style.SUCCESS
            self.stdout.write(style(summary(result)))


def _bounds(key: str) -> tuple[int, int | None]:
    """Return the values every task taking the argument accepts."""
    return next(kwargs[key] for kwargs in TASK_KWARGS.values() if key in kwargs)
