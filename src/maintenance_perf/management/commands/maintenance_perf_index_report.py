"""Report how the database's indexes are used, and whether the plan is applied."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from maintenance_perf.index_report import (
    IndexUsage,
    introspected_indexes,
    postgresql_index_usage,
    postgresql_statistics_age,
)
from maintenance_perf.indexes import build_plan, database_index_status, mapped_models
from maintenance_perf.management.tables import table_lines

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.db.backends.base.base import BaseDatabaseWrapper

    from maintenance_perf.indexes import IndexPlan


class Command(BaseCommand):
    help = (
        "Show each index's scans, tuples read and size (PostgreSQL), INVALID "
        "indexes, indexes never scanned, and which planned indexes are missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            choices=tuple(connections),
            help="The database to report on (default: %(default)s).",
        )
        parser.add_argument(
            "--all",
            action="store_true",
            help="Every table, not only those of the mapped models and the plan.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        plan = build_plan()
        tables = {planned.table for planned in plan.indexes}
        tables.update(model._meta.db_table for model in mapped_models())

        if connection.vendor == "postgresql":  # pragma: postgresql only
            self._postgresql(connection, None if options["all"] else tables)
        else:  # pragma: other databases only
            if options["all"]:
                tables = set(connection.introspection.table_names())
            self._other(connection, tables)
        self._plan(connection, plan)

    def _postgresql(  # pragma: postgresql only
        self, connection: BaseDatabaseWrapper, tables: set[str] | None
    ) -> None:
        # These counts are this server's: a read replica keeps its own.
        usage = postgresql_index_usage(connection, tables)
        age = postgresql_statistics_age(connection)
        self.stdout.write(
            f"Index usage in database {connection.alias!r} (PostgreSQL). "
            f"{age_sentence(age.reset_at, age.server_started_at)} An index built "
            "since then has had less time to be scanned, and scans on a replica "
            "are counted there, not here.\n"
        )
        rows = [
            (
                index.table,
                index.name,
                f"{index.scans:,}",
                f"{index.tuples_read:,}",
                size(index.size_bytes),
                note(index),
            )
            for index in usage
        ]
        self._table(("table", "index", "scans", "tuples read", "size", "note"), rows)

        invalid = [index for index in usage if not index.valid]
        if invalid:
            self.stdout.write(
                f"\n{len(invalid)} INVALID, left by a concurrent build that "
                "failed: never used by queries, yet maintained on every write. "
                "Migrate the app back and forward to rebuild, or drop with DROP "
                "INDEX CONCURRENTLY:"
            )
            for index in invalid:
                self.stdout.write(f"  {index.table}.{index.name}")

        unused = [index for index in usage if index.unused]
        self.stdout.write(
            f"\n{len(unused)} never scanned (primary-key, unique, constraint and "
            "foreign-key indexes are never counted as unused):"
        )
        for index in unused:
            self.stdout.write(
                f"  {index.table}.{index.name} ({size(index.size_bytes)})"
            )

    def _other(  # pragma: other databases only
        self, connection: BaseDatabaseWrapper, tables: set[str]
    ) -> None:
        vendor = connection.display_name
        self.stdout.write(
            f"Indexes in database {connection.alias!r} ({vendor}), as Django's "
            "introspection finds them.\n"
        )
        rows = [
            (
                index.table,
                index.name,
                ", ".join(index.columns),
                "primary key"
                if index.primary_key
                else "unique"
                if index.unique
                else "",
            )
            for index in introspected_indexes(connection, tables)
        ]
        self._table(("table", "index", "columns", "note"), rows)
        self.stdout.write(
            f"\n{vendor} keeps no index usage statistics: this report cannot tell "
            "how often an index is scanned, how many entries its scans read, how "
            "large it is, or whether it is never used. Run it on PostgreSQL for "
            "those."
        )

    def _plan(self, connection: BaseDatabaseWrapper, plan: IndexPlan) -> None:
        statuses = [
            (planned, database_index_status(connection, planned))
            for planned in plan.indexes
        ]
        present = sum(status == "valid" for _, status in statuses)
        self.stdout.write(
            f"\nIndex plan: {present} of {len(statuses)} planned indexes present "
            "and valid."
        )
        for planned, status in statuses:
            if status != "valid":
                fields = ", ".join(planned.index.fields)
                self.stdout.write(
                    f"  {status}: {planned.index.name} on "
                    f"{planned.model._meta.label} ({fields})"
                )

    def _table(self, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        for line in table_lines(header, rows):
            self.stdout.write(line)


def age_sentence(
    reset_at: datetime.datetime | None, started_at: datetime.datetime
) -> str:
    """Say since when the statistics have been counting."""
    if reset_at is None:
        return (
            "Its statistics were never reset, so counts go back to its creation "
            f"or to the last crash; the server has run since {_when(started_at)}."
        )
    days = (timezone.now() - reset_at).days
    return (
        f"Counts cover {days} days, since the statistics were reset on "
        f"{_when(reset_at)}."
    )


def size(size_bytes: int) -> str:
    """Format a size in bytes for people."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:.1f} {unit}"
    return f"{size_bytes} B"


def note(index: IndexUsage) -> str:
    """Say what an index enforces or serves, and whether it is ever used."""
    notes = []
    if not index.valid:
        notes.append("INVALID")
    if index.primary_key:
        notes.append("primary key")
    elif index.unique:
        notes.append("unique")
    elif index.constraint:
        notes.append(f"constraint {index.constraint}")
    if index.foreign_key:
        notes.append(f"foreign key {index.foreign_key}")
    if index.unused:
        notes.append("never scanned")
    return ", ".join(notes)


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
