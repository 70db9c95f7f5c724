"""How the database's indexes are used: what ``maintenance_perf_index_report`` shows.

PostgreSQL counts, per index, the scans that used it and the index entries
they read, from the last statistics reset on. Other databases keep no such
counts; for them the report lists the indexes Django's introspection finds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime
    from collections.abc import Collection

    from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class IndexUsage:
    """One index and how often it has been used (PostgreSQL)."""

    table: str
    name: str
    scans: int
    tuples_read: int
    size_bytes: int
    valid: bool
    primary_key: bool
    unique: bool
    #: The constraint the index enforces (primary key, unique, exclusion).
    constraint: str | None
    #: The foreign key column that is the index's only key column, if any: an
    #: index such as the one Django creates for a foreign key. An index of
    #: several columns led by one is judged by its scans like any other.
    foreign_key: str | None

    @property
    def enforces_something(self) -> bool:
        """Whether dropping the index would drop a key or a constraint."""
        return self.primary_key or self.unique or self.constraint is not None

    @property
    def unused(self) -> bool:
        """Never scanned, and neither enforcing nor serving a foreign key."""
        return (
            self.scans == 0
            and self.valid
            and not self.enforces_something
            and self.foreign_key is None
        )


@dataclass(frozen=True)
class StatisticsAge:
    """Since when PostgreSQL has been counting index scans."""

    #: When the database's statistics were last reset; ``None`` if never.
    reset_at: datetime.datetime | None
    server_started_at: datetime.datetime


@dataclass(frozen=True)
class IntrospectedIndex:
    """An index as Django's introspection sees it, on any database."""

    table: str
    name: str
    columns: tuple[str, ...]
    primary_key: bool
    unique: bool


_USAGE_SQL = """
SELECT s.relname, s.indexrelname, s.idx_scan, s.idx_tup_read,
       pg_catalog.pg_relation_size(s.indexrelid),
       i.indisvalid, i.indisprimary, i.indisunique,
       (SELECT c.conname FROM pg_catalog.pg_constraint c
         WHERE c.conindid = s.indexrelid AND c.conrelid = s.relid
           AND c.contype IN ('p', 'u', 'x')
         ORDER BY c.conname LIMIT 1),
       (SELECT a.attname FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = s.relid AND a.attnum = i.indkey[0]
           AND i.indnkeyatts = 1 AND i.indpred IS NULL
           AND EXISTS (SELECT FROM pg_catalog.pg_constraint f
                        WHERE f.contype = 'f' AND f.conrelid = s.relid
                          AND f.conkey = ARRAY[i.indkey[0]]))
FROM pg_catalog.pg_stat_user_indexes s
JOIN pg_catalog.pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = ANY (pg_catalog.current_schemas(false))
ORDER BY s.relname, s.indexrelname
"""


def postgresql_index_usage(  # pragma: postgresql only
    connection: BaseDatabaseWrapper, tables: Collection[str] | None = None
) -> list[IndexUsage]:
    """Return every index on the search path, or only on ``tables``."""
    with connection.cursor() as cursor:
        cursor.execute(_USAGE_SQL)
        rows = cursor.fetchall()
    usage = [IndexUsage(*row) for row in rows]
    if tables is None:
        return usage
    return [index for index in usage if index.table in tables]


def postgresql_statistics_age(  # pragma: postgresql only
    connection: BaseDatabaseWrapper,
) -> StatisticsAge:
    """Return when the current database's statistics began."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.stats_reset, pg_catalog.pg_postmaster_start_time() "
            "FROM pg_catalog.pg_stat_database d "
            "WHERE d.datname = pg_catalog.current_database()"
        )
        reset_at, started_at = cursor.fetchone()
    return StatisticsAge(reset_at, started_at)


def introspected_indexes(  # pragma: other databases only
    connection: BaseDatabaseWrapper, tables: Collection[str]
) -> list[IntrospectedIndex]:
    """Return the indexes, keys and unique constraints of ``tables``."""
    found = []
    with connection.cursor() as cursor:
        for table in sorted(tables):
            constraints = connection.introspection.get_constraints(cursor, table)
            for name, details in sorted(constraints.items()):
                if details["index"] or details["primary_key"] or details["unique"]:
                    found.append(
                        IntrospectedIndex(
                            table,
                            name,
                            tuple(details["columns"] or ()),
                            bool(details["primary_key"]),
                            bool(details["unique"]),
                        )
                    )
    return found
