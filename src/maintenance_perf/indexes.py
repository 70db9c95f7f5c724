"""The index plan: which indexes the host's models need, and their migrations.

The plan has three sources. The recommended plan covers the standard
maintenance schema on the host's mapped models; ``MAINTENANCE_PERF["INDEXES"]``
adds entries per model; and an index a model declares in its own
``Meta.indexes`` that no migration creates yet is written the same safe way.
An entry that an index the model already has would serve (the one Django
creates for a foreign key, a unique field, a declared index) is skipped.

At start-up :func:`install_plan` adds the planned indexes to their models'
``Meta.indexes``, so Django's model state knows them as it knows declared
ones: ``makemigrations`` stays quiet once the generated migration is applied,
and a table that SQLite rebuilds keeps them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.migrations import Migration
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.exceptions import BadMigrationError, NodeNotFoundError
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddIndex, CreateModel
from django.db.migrations.writer import MigrationWriter

from maintenance_perf.check_messages import error as _error
from maintenance_perf.check_messages import warning as _warning
from maintenance_perf.conf import DEFAULT_MODELS, SETTING_NAME, conf
from maintenance_perf.operations import (
    ConcurrentAddIndex,
    ConcurrentRemoveIndex,
    postgresql_index_validity,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from django.core import checks
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

#: Index entries for the standard maintenance schema, by model role; it cannot
#: be trimmed entry by entry, only a whole role mapped to None. Each serves
#: the dashboard's figures or a maintenance task's selection; see
#: ``docs/indexes.rst`` for which query uses which. There is no (status,
#: actual_end): PostgreSQL then picks it for every lookup by status alone,
#: the overdue check's included, and reads ten times the rows it needs.
RECOMMENDED_PLAN: dict[str, tuple[tuple[str, ...], ...]] = {
    "equipment": (("location", "status"), ("status",)),
    "activity": (
        ("equipment", "status"),
        ("scheduled_start", "status"),
        ("status", "scheduled_end"),
    ),
    "schedule": (("is_active", "next_due_date"),),
    "event": (("event_date", "is_completed"),),
}

#: The name of every migration the generator writes, after its number.
MIGRATION_NAME = "maintenance_perf_indexes"

#: Index names stay within Django's limit (``models.E034``), set for Oracle.
MAX_NAME_LENGTH = models.Index.max_name_length

_DIGEST_LENGTH = 6
_CLASS_LINE = "class Migration(migrations.Migration):\n"
_ATOMIC_LINE = "\n    atomic = False\n"
_NOT_NAME_CHARACTERS = re.compile(r"[^a-z0-9]+")

#: The plan's indexes that :func:`install_plan` added to each model's meta.
_installed: dict[type[models.Model], list[models.Index]] = {}
#: Marks ``Meta.indexes`` as declared on a model that declares none itself.
_PLAN_ONLY: list[models.Index] = []

HEADER = (
    "# Written by manage.py maintenance_perf_index_migrations from the index\n"
    "# plan. It builds each index concurrently on PostgreSQL, which cannot\n"
    "# happen inside a transaction, hence atomic = False.\n\n"
)


@dataclass(frozen=True)
class PlannedIndex:
    """One index of the plan, on one model."""

    model: type[models.Model]
    index: models.Index
    #: ``"recommended"``, ``"settings"`` or ``"model"`` (its ``Meta.indexes``).
    source: str

    @property
    def app_label(self) -> str:
        return self.model._meta.app_label

    @property
    def model_name(self) -> str:
        return self.model._meta.model_name or ""

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def operation(self) -> ConcurrentAddIndex:
        """Return the migration operation that builds this index."""
        return ConcurrentAddIndex(self.model._meta.object_name or "", self.index)


@dataclass
class IndexPlan:
    """The planned indexes, and a check message for each entry left out."""

    indexes: list[PlannedIndex] = field(default_factory=list)
    messages: list[checks.CheckMessage] = field(default_factory=list)

    def for_app(self, app_label: str) -> list[PlannedIndex]:
        return [planned for planned in self.indexes if planned.app_label == app_label]

    @property
    def app_labels(self) -> list[str]:
        return sorted({planned.app_label for planned in self.indexes})


def index_name(model: type[models.Model], fields: Sequence[str]) -> str:
    """Return a deterministic index name of at most 30 characters.

    The readable part, from the model and column names, may be cut short;
    the digest of the table and the full field list keeps two such names
    apart.
    """
    columns = [_column(model, name) for name in fields]
    digest = hashlib.sha256(
        f"{model._meta.db_table}({','.join(fields)})".encode()
    ).hexdigest()[:_DIGEST_LENGTH]

    # "maintenance.MaintenanceActivity" reads better as "activity".
    model_part = model._meta.model_name or ""
    app_label = model._meta.app_label
    if model_part.startswith(app_label) and model_part != app_label:
        model_part = model_part[len(app_label) :]
    parts = [model_part, *columns]
    readable = "_".join(
        _NOT_NAME_CHARACTERS.sub("", part.lower())[:8] for part in parts
    )
    readable = readable[: MAX_NAME_LENGTH - _DIGEST_LENGTH - 1].strip("_")
    # Django rejects a name that starts with a digit or an underscore.
    if not readable[:1].isalpha():
        readable = f"i{readable}"[: MAX_NAME_LENGTH - _DIGEST_LENGTH - 1]
    return f"{readable}_{digest}"


def build_plan(app_labels: Iterable[str] = ()) -> IndexPlan:
    """Collect the plan from the recommended entries, settings and models.

    ``app_labels`` adds those apps' models' own ``Meta.indexes``; the apps of
    the mapped models are always looked at.
    """
    plan = IndexPlan()
    seen: set[tuple[str, tuple[str, ...]]] = set()

    for role, entries in RECOMMENDED_PLAN.items():
        model = _mapped_model(role)
        if model is None:
            continue
        for fields in entries:
            if _has_fields(model, fields):
                _add_entry(plan, seen, model, fields, None, "recommended")
            else:
                plan.messages.append(_missing_fields_warning(role, model, fields))

    for key, entries in _index_settings().items():
        model = _settings_model(plan, key)
        if model is None:
            continue
        if not isinstance(entries, (list, tuple)):
            plan.messages.append(
                _error(
                    f"{SETTING_NAME}['INDEXES'][{key!r}] must be a list of index "
                    f"entries, not {type(entries).__name__}.",
                    "For example: [('status', 'scheduled_end')].",
                    22,
                )
            )
            continue
        for entry in entries:
            _add_settings_entry(plan, seen, key, model, entry)

    candidates = {planned.app_label for planned in plan.indexes}
    candidates.update(app_labels)
    for model in _models_of(candidates):
        for index in _declared_indexes(model):
            plan.indexes.append(PlannedIndex(model, index, "model"))
    return plan


def install_plan(**kwargs: Any) -> None:
    """Put the planned indexes into their models' ``Meta.indexes``.

    Runs at start-up and, as a ``setting_changed`` receiver, whenever
    ``MAINTENANCE_PERF`` changes; the indexes it added before are taken out
    first.
    """
    if kwargs.get("setting", SETTING_NAME) != SETTING_NAME:
        return

    for model in _installed:
        model._meta.indexes = _declared_indexes(model)
        if model._meta.original_attrs.get("indexes") is _PLAN_ONLY:
            del model._meta.original_attrs["indexes"]
    _installed.clear()

    # An index that leaves the plan leaves Meta.indexes too, so makemigrations
    # then writes a plain RemoveIndex for it; nothing here drops it.
    for planned in build_plan().indexes:
        meta = planned.model._meta
        names = {index.name for index in meta.indexes}
        if planned.source == "model" or planned.index.name in names:
            continue
        meta.indexes = [*meta.indexes, planned.index]
        _installed.setdefault(planned.model, []).append(planned.index)
        # Django's model state copies only the Meta options a model declares.
        meta.original_attrs.setdefault("indexes", _PLAN_ONLY)


def check_index_settings(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    """Report every index plan entry that is wrong, left out or not migrated."""
    if not isinstance(user_settings.get("INDEXES", {}), dict):
        return [
            _error(
                f"{SETTING_NAME}['INDEXES'] must be a dict of model role or label "
                f"to index entries, not {type(user_settings['INDEXES']).__name__}.",
                "For example: {'activity': [('status', 'actual_end')]}.",
                20,
            )
        ]

    plan = build_plan()
    try:
        loader = MigrationLoader(None, ignore_no_migrations=True)
    except (BadMigrationError, NodeNotFoundError):
        # migrate and makemigrations report a broken migration graph better.
        return plan.messages
    pending = pending_indexes(plan, loader)
    if not pending:
        return plan.messages
    names = ", ".join(planned.index.name for planned in pending)
    return [
        *plan.messages,
        _warning(
            f"{len(pending)} planned index{'es have' if len(pending) > 1 else ' has'} "
            f"no migration yet: {names}.",
            "Run manage.py maintenance_perf_index_migrations before "
            "makemigrations, which would write a plain AddIndex that blocks "
            "writes while it builds.",
            22,
        ),
    ]


def written_indexes(
    loader: MigrationLoader, app_label: str
) -> dict[tuple[str, str], tuple[str, str]]:
    """Map (model name, index name) of each index the app's migrations build
    to the migration that builds it."""
    leaves = loader.graph.leaf_nodes(app_label)
    if not leaves:
        return {}

    # Replaying the operations finds the migration of each index, and the
    # indexes that Django's model state does not hold.
    replayed: dict[tuple[str, str], tuple[str, str]] = {}
    outside_state: set[tuple[str, str]] = set()
    for node in loader.graph.forwards_plan(leaves[-1]):
        if node[0] != app_label:
            continue
        for operation in loader.graph.nodes[node].operations:
            if isinstance(operation, (AddIndex, ConcurrentAddIndex)):
                key = (operation.model_name_lower, operation.index.name)
                replayed[key] = node
                if (
                    isinstance(operation, ConcurrentAddIndex)
                    and not operation.model_state
                ):
                    outside_state.add(key)
            elif isinstance(operation, ConcurrentRemoveIndex):
                outside_state.discard(
                    (operation.model_name_lower, operation.index.name)
                )
            elif isinstance(operation, CreateModel):
                for index in operation.options.get("indexes", []):
                    replayed[operation.name_lower, index.name] = node

    written = {key: replayed[key] for key in outside_state}
    for (label, model_name), model_state in loader.project_state().models.items():
        if label == app_label:
            for index in model_state.options.get("indexes", []):
                key = (model_name, index.name)
                written[key] = replayed.get(key, leaves[-1])
    return written


def pending_indexes(plan: IndexPlan, loader: MigrationLoader) -> list[PlannedIndex]:
    """Return the planned indexes that no migration builds yet."""
    pending = []
    for app_label in plan.app_labels:
        written = written_indexes(loader, app_label)
        pending += [
            planned
            for planned in plan.for_app(app_label)
            if (planned.model_name, planned.index.name) not in written
        ]
    return pending


def index_migration(
    app_label: str, pending: Sequence[PlannedIndex], loader: MigrationLoader
) -> tuple[str, str]:
    """Return the path and text of the migration that builds ``pending``.

    Raise ``ValueError`` when the app has no migrations yet, or more than one
    leaf migration.
    """
    leaves = loader.graph.leaf_nodes(app_label)
    if not leaves:
        raise ValueError(
            f"App {app_label!r} has no migrations; run makemigrations first."
        )
    if len(leaves) > 1:
        raise ValueError(
            f"App {app_label!r} has {len(leaves)} leaf migrations; "
            "run makemigrations --merge first."
        )

    number = (MigrationAutodetector.parse_number(leaves[0][1]) or 0) + 1
    ordered = sorted(
        pending, key=lambda planned: (planned.model_name, planned.index.name)
    )
    attributes = {
        "dependencies": [leaves[0]],
        "atomic": False,
        "operations": [planned.operation() for planned in ordered],
    }
    migration_class = type("Migration", (Migration,), attributes)
    migration = migration_class(f"{number:04d}_{MIGRATION_NAME}", app_label)

    writer = MigrationWriter(migration, include_header=False)
    # Django versions differ in the order of the imports and in whether they
    # write the atomic flag; fixing both gives the same file on every version.
    imports, body = writer.as_string().split("\n\n\n", 1)
    import_lines = sorted(
        imports.splitlines(), key=lambda line: (line.startswith("from "), line)
    )
    body = body.replace(_ATOMIC_LINE, "", 1)
    body = body.replace(_CLASS_LINE, _CLASS_LINE + _ATOMIC_LINE, 1)
    return writer.path, HEADER + "\n".join(import_lines) + "\n\n\n" + body


def database_index_status(
    connection: BaseDatabaseWrapper, planned: PlannedIndex
) -> str:
    """Return ``"valid"``, ``"invalid"`` or ``"missing"`` for a planned index."""
    if connection.vendor == "postgresql":  # pragma: postgresql only
        valid = postgresql_index_validity(connection, planned.index.name)
    else:  # pragma: other databases only
        with connection.cursor() as cursor:
            names = connection.introspection.get_constraints(cursor, planned.table)
        # Only PostgreSQL keeps an index that failed to build.
        valid = True if planned.index.name in names else None
    return {True: "valid", False: "invalid", None: "missing"}[valid]


def mapped_models() -> list[type[models.Model]]:
    """Return the host models mapped to a role, skipping wrong labels."""
    found = [_mapped_model(role) for role in DEFAULT_MODELS]
    return [model for model in found if model is not None]


def _index_settings() -> dict[Any, Any]:
    return conf.indexes


def _mapped_model(role: str) -> type[models.Model] | None:
    label = conf.models[role]
    if not isinstance(label, str):
        return None
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        # A wrong MODELS label is reported by its own check (E007).
        return None


def _settings_model(plan: IndexPlan, key: Any) -> type[models.Model] | None:
    where = f"{SETTING_NAME}['INDEXES'][{key!r}]"
    if key in DEFAULT_MODELS:
        model = _mapped_model(key)
        if model is None and conf.models[key] is None:
            plan.messages.append(
                _error(
                    f"{where} plans indexes for the {key} role, which MODELS "
                    "maps to None.",
                    f"Map the role in {SETTING_NAME}['MODELS'], or remove the key.",
                    21,
                )
            )
        return model

    if isinstance(key, str) and key.count(".") == 1:
        try:
            return apps.get_model(key)
        except LookupError:
            pass
    plan.messages.append(
        _error(
            f"{SETTING_NAME}['INDEXES'] has the key {key!r}, which is neither a "
            "model role nor the label of an installed model.",
            f"Use a role ({', '.join(DEFAULT_MODELS)}) or 'app_label.ModelName'.",
            21,
        )
    )
    return None


def _add_settings_entry(
    plan: IndexPlan,
    seen: set[tuple[str, tuple[str, ...]]],
    key: Any,
    model: type[models.Model],
    entry: Any,
) -> None:
    where = f"{SETTING_NAME}['INDEXES'][{key!r}]"
    index = entry if isinstance(entry, models.Index) else None
    fields: Any = tuple(entry.fields) if index else entry
    if isinstance(fields, list):
        fields = tuple(fields)

    if index is None and not (
        isinstance(fields, tuple)
        and fields
        and all(isinstance(name, str) and name.lstrip("-") for name in fields)
    ):
        plan.messages.append(
            _error(
                f"{where} holds {entry!r}, which is neither a list of field names "
                "nor a models.Index.",
                "Write an entry as ('field', '-other_field') or models.Index(...).",
                22,
            )
        )
        return

    unknown = [name for name in fields if _field(model, name) is None]
    if unknown:
        plan.messages.append(
            _error(
                f"{where} names {', '.join(map(repr, unknown))}, which "
                f"{model._meta.label} has no column for.",
                "Use the names of the model's own fields; many-to-many fields "
                "cannot be indexed.",
                23,
            )
        )
        return

    problem = _name_problem(index.name) if index is not None and index.name else ""
    if index is not None and problem:
        plan.messages.append(
            _error(
                f"{where} holds an index named {index.name!r}, which {problem}.",
                f"Use at most {MAX_NAME_LENGTH} letters, digits and underscores, "
                "starting with a letter.",
                24,
            )
        )
        return
    _add_entry(plan, seen, model, fields, index, "settings")


def _is_custom(index: models.Index) -> bool:
    """Whether the index is more than an ordered list of columns."""
    return bool(
        index.contains_expressions
        or index.condition is not None
        or index.include
        or index.opclasses
    )


def _add_entry(
    plan: IndexPlan,
    seen: set[tuple[str, tuple[str, ...]]],
    model: type[models.Model],
    fields: tuple[str, ...],
    index: models.Index | None,
    source: str,
) -> None:
    fields = tuple(_normalise(model, name) for name in fields)
    if fields and (index is None or not _is_custom(index)):
        key = (model._meta.label_lower, tuple(name.lstrip("-") for name in fields))
        covering = _covering_index(model, key[1])
        if covering or key in seen:
            plan.messages.append(
                _warning(
                    f"The {source} index plan entry {fields!r} on "
                    f"{model._meta.label} is left out: "
                    f"{covering or 'the plan already has it'}.",
                    "An index serves queries on any leading part of its "
                    "columns, so a second one would only slow writes.",
                    20,
                )
            )
            return
        seen.add(key)

    if index is None or not index.name:
        index = models.Index(fields=list(fields), name=index_name(model, fields))
    plan.indexes.append(PlannedIndex(model, index, source))


def _covering_index(model: type[models.Model], columns: tuple[str, ...]) -> str:
    """Describe an index the model already has that serves ``columns``, if any."""
    for existing, description in _existing_indexes(model):
        if existing[: len(columns)] == columns:
            return description
    return ""


def _existing_indexes(
    model: type[models.Model],
) -> list[tuple[tuple[str, ...], str]]:
    meta = model._meta
    found: list[tuple[tuple[str, ...], str]] = []
    for model_field in meta.local_concrete_fields:
        if model_field.primary_key:
            found.append(((model_field.name,), "the primary key covers it"))
        elif model_field.unique:
            found.append(((model_field.name,), f"{model_field.name} is unique"))
        elif getattr(model_field, "db_index", False):
            kind = "foreign key" if model_field.is_relation else "indexed field"
            found.append(
                ((model_field.name,), f"Django indexes the {kind} {model_field.name}")
            )
    for index in _declared_indexes(model):
        if index.fields and index.condition is None:
            columns = tuple(name.lstrip("-") for name in index.fields)
            found.append((columns, f"the model declares the index {index.name}"))
    for together in meta.unique_together:
        found.append(
            (tuple(together), f"unique_together {tuple(together)!r} covers it")
        )
    for constraint in meta.constraints:
        if (
            isinstance(constraint, models.UniqueConstraint)
            and constraint.fields
            and constraint.condition is None
        ):
            found.append(
                (
                    tuple(constraint.fields),
                    f"the constraint {constraint.name} covers it",
                )
            )
    return found


def _declared_indexes(model: type[models.Model]) -> list[models.Index]:
    """Return the indexes the model itself declares, without the plan's."""
    added = _installed.get(model, [])
    return [index for index in model._meta.indexes if not _is_one_of(index, added)]


def _is_one_of(index: models.Index, indexes: Iterable[models.Index]) -> bool:
    return any(index is other for other in indexes)


def _models_of(app_labels: Iterable[str]) -> list[type[models.Model]]:
    found = []
    for app_label in sorted(set(app_labels)):
        try:
            config = apps.get_app_config(app_label)
        except LookupError:
            continue
        found += [model for model in config.get_models() if model._meta.managed]
    return found


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any] | None:
    try:
        found = model._meta.get_field(name.lstrip("-"))
    except FieldDoesNotExist:
        return None
    if not getattr(found, "concrete", False) or found.many_to_many:
        return None
    assert isinstance(found, models.Field)
    return found


def _has_fields(model: type[models.Model], fields: Iterable[str]) -> bool:
    return all(_field(model, name) is not None for name in fields)


def _normalise(model: type[models.Model], name: str) -> str:
    # An entry may name a foreign key by its column ("equipment_id").
    found = _field(model, name)
    order = "-" if name.startswith("-") else ""
    return f"{order}{found.name}" if found is not None else name


def _column(model: type[models.Model], name: str) -> str:
    found = _field(model, name)
    return (found.column if found is not None else None) or name.lstrip("-")


def _name_problem(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if not name[:1].isalpha():
        return "does not start with a letter"
    return ""


def _missing_fields_warning(
    role: str, model: type[models.Model], fields: tuple[str, ...]
) -> checks.Warning:
    missing = [name for name in fields if _field(model, name) is None]
    return _warning(
        f"The recommended index on {fields!r} is left out: the {role} model "
        f"{model._meta.label} has no field {', '.join(map(repr, missing))}.",
        f"Add an equivalent entry under {SETTING_NAME}['INDEXES'][{role!r}] "
        "with your model's field names.",
        21,
    )
