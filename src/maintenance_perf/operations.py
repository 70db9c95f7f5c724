"""Migration operations that add and remove an index without blocking writes.

On PostgreSQL the index is built with ``CREATE INDEX CONCURRENTLY``, so
inserts and updates on the table go on while it builds. PostgreSQL runs that
statement only outside a transaction: a migration holding these operations
must set ``atomic = False``. Every other database gets a plain
``CREATE INDEX`` and ``DROP INDEX``.

Both operations are safe to run again: an index that already exists is left
alone, and on PostgreSQL an INVALID index, which a failed concurrent build
leaves behind, is dropped and built again.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, NotSupportedError
from django.db.migrations.operations.base import Operation

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import ProjectState
    from django.db.models import Index, Model

logger = logging.getLogger(__name__)

CONCURRENT_CREATE = "CREATE INDEX CONCURRENTLY "


class _IndexOperation(Operation):
    """Shared arguments, state handling and description of both operations."""

    def __init__(
        self,
        model_name: str,
        index: Index,
        *,
        model_state: bool = True,
        lock_timeout: str | None = None,
    ) -> None:
        if not index.name:
            raise ValueError(
                f"{type(self).__name__} needs a named index, not {index!r}."
            )
        self.model_name = model_name
        self.index = index
        self.model_state = model_state
        self.lock_timeout = lock_timeout

    @property
    def model_name_lower(self) -> str:
        return self.model_name.lower()

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"model_name": self.model_name, "index": self.index}
        if not self.model_state:
            kwargs["model_state"] = False
        if self.lock_timeout is not None:
            kwargs["lock_timeout"] = self.lock_timeout
        return type(self).__qualname__, [], kwargs

    def references_model(self, name: str, app_label: str) -> bool:
        return name.lower() == self.model_name_lower

    def _add(self, app_label: str, schema_editor: Any, state: ProjectState) -> None:
        model = state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            add_index(schema_editor, model, self.index, lock_timeout=self.lock_timeout)

    def _remove(self, app_label: str, schema_editor: Any, state: ProjectState) -> None:
        model = state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            remove_index(
                schema_editor, model, self.index, lock_timeout=self.lock_timeout
            )

    def _fields(self) -> str:
        return ", ".join(self.index.fields) or "expressions"


class ConcurrentAddIndex(_IndexOperation):
    """Add an index, concurrently on PostgreSQL.

    ``model_state=False`` is for an index the model does not declare in its
    ``Meta.indexes`` (one from the settings' index plan): Django's model
    state then stays without it, so ``makemigrations`` never offers to drop
    it. ``lock_timeout`` (a PostgreSQL duration such as ``"5s"``) bounds
    how long the build waits for other transactions.
    """

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        if self.model_state:
            state.add_index(app_label, self.model_name_lower, self.index)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._add(app_label, schema_editor, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._remove(app_label, schema_editor, from_state)

    def describe(self) -> str:
        return (
            f"Create index {self.index.name} on {self._fields()} of model "
            f"{self.model_name}, concurrently where the database can"
        )

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name_lower}_{self.index.name.lower()}"


class ConcurrentRemoveIndex(_IndexOperation):
    """Drop an index, concurrently on PostgreSQL; reversing builds it again.

    It takes the whole index, not only its name, so that it can be reversed
    whether or not Django's model state knows the index. ``model_state``
    and ``lock_timeout`` mean what they mean for :class:`ConcurrentAddIndex`.
    """

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        if self.model_state:
            state.remove_index(app_label, self.model_name_lower, self.index.name)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._remove(app_label, schema_editor, from_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        self._add(app_label, schema_editor, to_state)

    def describe(self) -> str:
        return (
            f"Remove index {self.index.name} from model {self.model_name}, "
            "concurrently where the database can"
        )

    @property
    def migration_name_fragment(self) -> str:
        return f"remove_{self.model_name_lower}_{self.index.name.lower()}"


def add_index(
    schema_editor: BaseDatabaseSchemaEditor,
    model: type[Model],
    index: Index,
    *,
    lock_timeout: str | None = None,
) -> None:
    """Create ``index`` unless it exists: concurrently on PostgreSQL."""
    if schema_editor.connection.vendor == "postgresql":  # pragma: postgresql only
        _add_on_postgresql(schema_editor, model, index, lock_timeout)
    else:  # pragma: other databases only
        _add_elsewhere(schema_editor, model, index)


def remove_index(
    schema_editor: BaseDatabaseSchemaEditor,
    model: type[Model],
    index: Index,
    *,
    lock_timeout: str | None = None,
) -> None:
    """Drop ``index`` if it exists: concurrently on PostgreSQL."""
    if schema_editor.connection.vendor == "postgresql":  # pragma: postgresql only
        _require_autocommit(schema_editor, index)
        sql = str(index.remove_sql(model, schema_editor, concurrently=True))
        with _session_setting(schema_editor, "lock_timeout", lock_timeout):
            schema_editor.execute(sql, params=None)
    else:  # pragma: other databases only
        _remove_elsewhere(schema_editor, model, index)


def postgresql_index_validity(  # pragma: postgresql only
    connection: BaseDatabaseWrapper, name: str
) -> bool | None:
    """Return whether the index ``name`` on the search path is valid, or ``None``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_catalog.pg_index "
            "WHERE indexrelid = pg_catalog.to_regclass(%s)",
            [connection.ops.quote_name(name)],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def _add_on_postgresql(  # pragma: postgresql only
    schema_editor: BaseDatabaseSchemaEditor,
    model: type[Model],
    index: Index,
    lock_timeout: str | None,
) -> None:
    _require_autocommit(schema_editor, index)
    # With IF NOT EXISTS a second migrate run racing this one skips the index
    # instead of failing.
    sql = str(index.create_sql(model, schema_editor, concurrently=True)).replace(
        CONCURRENT_CREATE, f"{CONCURRENT_CREATE}IF NOT EXISTS ", 1
    )

    # sqlmigrate prints the statement; the checks below need a live database.
    if schema_editor.collect_sql:
        schema_editor.execute(sql, params=None)
        return

    # An index found under this name is taken as this one: its columns are
    # not compared, and an INVALID one is taken for a failed build's leftover,
    # not for a build another process is running right now.
    valid = postgresql_index_validity(schema_editor.connection, index.name)
    if valid:
        logger.info("Index %s already exists; left as it is.", index.name)
        return
    if valid is False:
        logger.warning(
            "Index %s is INVALID, left by a build that failed; "
            "dropping it and building it again.",
            index.name,
        )
        _drop_concurrently(schema_editor, model, index)

    try:
        with _session_setting(schema_editor, "lock_timeout", lock_timeout):
            schema_editor.execute(sql, params=None)
    except DatabaseError:
        # A failed concurrent build leaves an INVALID index that every write
        # still has to maintain; drop it before reporting the failure. A build
        # killed another way leaves it for the next run to drop.
        logger.warning("Building index %s failed; dropping what was built.", index.name)
        try:
            _drop_concurrently(schema_editor, model, index)
        except DatabaseError:
            logger.exception(
                "Could not drop the INVALID index %s; the next run of this "
                "migration drops it and builds it again.",
                index.name,
            )
        raise


def _drop_concurrently(  # pragma: postgresql only
    schema_editor: BaseDatabaseSchemaEditor, model: type[Model], index: Index
) -> None:
    # DROP INDEX CONCURRENTLY blocks neither reads nor writes while it waits
    # for older transactions, so it may wait as long as it must: a lock
    # timeout here would only leave the INVALID index in place.
    sql = str(index.remove_sql(model, schema_editor, concurrently=True))
    with _session_setting(schema_editor, "lock_timeout", "0"):
        schema_editor.execute(sql, params=None)


def _require_autocommit(  # pragma: postgresql only
    schema_editor: BaseDatabaseSchemaEditor, index: Index
) -> None:
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"Index {index.name} is built or dropped concurrently, which "
            "PostgreSQL cannot do inside a transaction. Set atomic = False on "
            "the migration, and keep it free of other operations."
        )


def _add_elsewhere(  # pragma: other databases only
    schema_editor: BaseDatabaseSchemaEditor, model: type[Model], index: Index
) -> None:
    # No other database Django supports builds an index without locking the
    # table against writes, so this is a plain CREATE INDEX.
    if not schema_editor.collect_sql and _index_exists(schema_editor, model, index):
        logger.info("Index %s already exists; left as it is.", index.name)
        return
    schema_editor.add_index(model, index)


def _remove_elsewhere(  # pragma: other databases only
    schema_editor: BaseDatabaseSchemaEditor, model: type[Model], index: Index
) -> None:
    if not schema_editor.collect_sql and not _index_exists(schema_editor, model, index):
        logger.info("Index %s does not exist; nothing to drop.", index.name)
        return
    schema_editor.remove_index(model, index)


def _index_exists(  # pragma: other databases only
    schema_editor: BaseDatabaseSchemaEditor, model: type[Model], index: Index
) -> bool:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, model._meta.db_table
        )
    return index.name in constraints


@contextmanager
def _session_setting(  # pragma: postgresql only
    schema_editor: BaseDatabaseSchemaEditor, name: str, value: str | None
) -> Iterator[None]:
    """Set a PostgreSQL setting for this session, then put the old value back."""
    if value is None:
        yield
        return

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_catalog.current_setting(%s)", [name])
        previous = cursor.fetchone()[0]
        cursor.execute("SELECT pg_catalog.set_config(%s, %s, false)", [name, value])
    try:
        yield
    finally:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_catalog.set_config(%s, %s, false)", [name, previous]
            )
