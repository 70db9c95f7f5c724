"""Write the index plan into migrations that build each index concurrently."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from maintenance_perf.indexes import (
    IndexPlan,
    PlannedIndex,
    build_plan,
    database_index_status,
    index_migration,
    pending_indexes,
    written_indexes,
)

#: What a planned index that its applied migration should have built is.
APPLIED_BUT = {
    "invalid": ", left by a build that failed; migrate {app} back before "
    "{migration} and forward again to rebuild it.",
    "missing": " although migration {app}.{migration} is applied; a later "
    "migration may have rebuilt the table without it.",
}


class Command(BaseCommand):
    help = (
        "Write the index plan (the recommended indexes, MAINTENANCE_PERF's "
        "INDEXES and the models' own Meta.indexes) into one non-atomic "
        "migration per app, which builds each index concurrently on PostgreSQL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "args",
            metavar="app_label",
            nargs="*",
            help="Only these apps; their models' Meta.indexes join the plan.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the migrations instead of writing them.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit with status 1 unless every planned index "
            "has a migration and is present and valid in the database.",
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help="The database --check looks at (default: %(default)s).",
        )

    def handle(self, *app_labels: str, **options: Any) -> None:
        if options["dry_run"] and options["check"]:
            raise CommandError(
                "--dry-run and --check do not go together: use --dry-run to print "
                "the migrations, or --check to verify the plan is applied"
            )
        for app_label in app_labels:
            try:
                apps.get_app_config(app_label)
            except LookupError as error:
                raise CommandError(str(error)) from error

        plan = build_plan(app_labels)
        if app_labels:
            plan.indexes = [p for p in plan.indexes if p.app_label in app_labels]
        for message in plan.messages:
            self.stderr.write(f"{message.id}: {message.msg}")

        loader = MigrationLoader(None, ignore_no_migrations=True)
        pending = pending_indexes(plan, loader)
        if options["check"]:
            self._check(plan, pending, loader, options["database"])
        elif not pending:
            self.stdout.write("No changes: every planned index has a migration.")
        else:
            self._write(pending, loader, dry_run=options["dry_run"])

    def _write(
        self, pending: list[PlannedIndex], loader: MigrationLoader, *, dry_run: bool
    ) -> None:
        for app_label in sorted({planned.app_label for planned in pending}):
            entries = [planned for planned in pending if planned.app_label == app_label]
            try:
                path, text = index_migration(app_label, entries, loader)
            except ValueError as error:
                raise CommandError(str(error)) from error

            count = f"{len(entries)} index{'es' if len(entries) > 1 else ''}"
            if dry_run:
                self.stdout.write(f"--- {path} ({count})\n{text}")
                continue
            Path(path).write_text(text, encoding="utf-8")
            self.stdout.write(f"Wrote {path}: {count}.")

    def _check(
        self,
        plan: IndexPlan,
        pending: list[PlannedIndex],
        loader: MigrationLoader,
        alias: str,
    ) -> None:
        problems = [
            f"{_describe(planned)} has no migration yet; run manage.py "
            "maintenance_perf_index_migrations."
            for planned in pending
        ]

        connection = connections[alias]
        applied = MigrationRecorder(connection).applied_migrations()
        written = {
            app_label: written_indexes(loader, app_label)
            for app_label in plan.app_labels
        }
        for planned in plan.indexes:
            node = written[planned.app_label].get(
                (planned.model_name, planned.index.name)
            )
            if node is None:
                continue
            status = database_index_status(connection, planned)
            if status == "valid":
                continue
            if node not in applied:
                problems.append(
                    f"{_describe(planned)} is not built: migration {node[0]}."
                    f"{node[1]} is not applied; run manage.py migrate."
                )
            else:
                problems.append(
                    f"{_describe(planned)} is {status}"
                    + APPLIED_BUT[status].format(app=node[0], migration=node[1])
                )

        if problems:
            for problem in problems:
                self.stderr.write(problem)
            sys.exit(1)
        self.stdout.write(
            f"The index plan is applied: {len(plan.indexes)} indexes, all valid "
            f"in database {alias!r}."
        )


def _describe(planned: PlannedIndex) -> str:
    fields = ", ".join(planned.index.fields) or "expressions"
    return f"Index {planned.index.name} on {planned.model._meta.label} ({fields})"
