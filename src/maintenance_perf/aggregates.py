"""Dashboard figures in a fixed number of queries, whatever the number of rows.

Every helper takes a queryset and field names (or expressions) and returns
plain Python data: dicts keyed by the grouped values, holding ints, floats,
Decimals and dates, ready to pickle into a cache.

The query shape follows the database. On PostgreSQL (and every database but
SQLite) the conditional figures of one call share one grouped query with a
``FILTER`` clause each, behind a ``WHERE`` that keeps only rows some figure
counts. SQLite plans such a query badly, so there each conditional figure gets
a grouped query of its own with its condition in ``WHERE``. Either way the
number of queries depends on the call, never on the data.
"""

from __future__ import annotations

import contextlib
import datetime
import operator
from collections import Counter
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict, overload

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import Count, DateField, DateTimeField, F, Q, Value
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.db.models.functions import Coalesce, Trunc
from django.db.models.sql.datastructures import Join
from django.utils import timezone

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Mapping, Sequence

    from django.db.models import Aggregate, Field, Model, QuerySet
    from django.db.models.expressions import Combinable
    from django.db.models.sql import Query

#: What rows are grouped by: a field path such as ``"equipment__location"``,
#: or an expression such as :func:`parent_or_self` or :class:`PeriodStart`.
GroupKey: TypeAlias = "str | Combinable"

#: The calendar periods :func:`count_by_period` and :class:`PeriodStart` know.
Period: TypeAlias = Literal["day", "week", "month", "quarter", "year"]

__all__ = [
    "GroupKey",
    "Period",
    "PeriodStart",
    "PivotTable",
    "aggregate_by",
    "conditional_counts",
    "count_by",
    "count_by_period",
    "parent_or_self",
    "pivot",
]

# Internal aliases carry a prefix so they never collide with a model field.
KEY_ALIAS = "mperf_key_{}"
VALUE_ALIAS = "mperf_value_{}"
COUNT_ALIAS = "mperf_count"


class PivotTable(TypedDict):
    """Counts by row and column, with the totals a table shows at its edges."""

    rows: dict[Any, dict[Any, int]]
    row_totals: dict[Any, int]
    column_totals: dict[Any, int]
    total: int


class PeriodStart(Trunc):
    """The local date on which the period holding a date or datetime starts.

    Datetimes are truncated in the current Django time zone, read when the
    query is built, so a row just before local midnight lands on its local
    date. Weeks start on Monday.
    """

    def __init__(self, expression: Combinable | str, period: Period) -> None:
        super().__init__(expression, period, output_field=DateField())

    def resolve_expression(
        self,
        query: Any | None = None,
        allow_joins: bool = True,
        reuse: set[str] | None = None,
        summarize: bool = False,
        for_save: bool = False,
    ) -> PeriodStart:
        resolved: PeriodStart = super().resolve_expression(
            query, allow_joins, reuse, summarize, for_save
        )

        # Django refuses a time zone for a date field, which needs none.
        if settings.USE_TZ and isinstance(resolved.lhs.output_field, DateTimeField):
            resolved.tzinfo = timezone.get_current_timezone()
        return resolved


def parent_or_self(path: str = "", parent: str = "parent") -> Coalesce:
    """Group by the parent of the object at ``path``, or by itself if it has none.

    ``count_by(Equipment.objects.all(), parent_or_self("location"))`` counts
    equipment per site, where a location without a parent is its own site.
    Without ``path`` the object is the row itself: ``parent_or_self()`` groups
    locations by site.
    """
    if not path:
        return Coalesce(parent, "pk")
    return Coalesce(f"{path}{LOOKUP_SEP}{parent}", path)


@overload
def count_by(
    queryset: QuerySet[Any],
    field: GroupKey,
    /,
    *,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
) -> dict[Any, int]: ...


@overload
def count_by(
    queryset: QuerySet[Any],
    field: GroupKey,
    second_field: GroupKey,
    /,
    *more_fields: GroupKey,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
) -> dict[Any, dict[Any, Any]]: ...


def count_by(
    queryset: QuerySet[Any],
    /,
    *fields: GroupKey,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
) -> dict[Any, Any]:
    """Count the rows of ``queryset`` per value of one field or several, in one query.

    With several fields the result nests, outer field first. ``keys`` are
    values of the first field that appear even when no row has them; with
    ``fill_choices`` every value a field's ``choices`` declare appears too.
    Missing combinations count 0.
    """
    if not fields:
        raise TypeError("count_by() needs at least one field to group by")

    counts = _count_rows(queryset, fields)

    required = [_required_keys(queryset, fields[0], keys, fill_choices)]
    required += [
        _required_keys(queryset, field, None, fill_choices) for field in fields[1:]
    ]
    return _nest(counts, required)


@overload
def conditional_counts(
    queryset: QuerySet[Any],
    counts: Mapping[str, Q],
    *,
    group_by: None = None,
    prefilter: Q | None = None,
    combined: bool | None = None,
) -> dict[str, int]: ...


@overload
def conditional_counts(
    queryset: QuerySet[Any],
    counts: Mapping[str, Q],
    *,
    group_by: GroupKey,
    prefilter: Q | None = None,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
    combined: bool | None = None,
) -> dict[Any, dict[str, int]]: ...


def conditional_counts(
    queryset: QuerySet[Any],
    counts: Mapping[str, Q],
    *,
    group_by: GroupKey | None = None,
    prefilter: Q | None = None,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
    combined: bool | None = None,
) -> dict[Any, Any]:
    """Count the rows of ``queryset`` matching each condition, per group.

    ``counts`` maps a figure's name to its condition; an empty ``Q()`` counts
    every row. A condition through a multi-valued relation counts each row
    once. ``prefilter`` narrows the rows first, like ``queryset.filter()``.
    When every figure has a condition, their OR is added to ``WHERE``.
    ``combined`` forces one query with a ``FILTER`` per figure (``True``) or
    one query per figure (``False``); by default SQLite gets the latter.
    A group appears when some figure counts a row in it, or when it is
    named in ``keys`` or declared in the field's choices.
    """
    rows = _rows(queryset, prefilter)
    group = () if group_by is None else (group_by,)
    distinct = _repeats_rows(rows, group)
    aggregates = {
        name: Count("pk", filter=_semi_join(rows, condition), distinct=distinct)
        for name, condition in counts.items()
    }

    results = _aggregate(rows, group, aggregates, combined)

    return _per_group(queryset, group_by, aggregates, results, keys, fill_choices)


@overload
def aggregate_by(
    queryset: QuerySet[Any],
    aggregates: Mapping[str, Aggregate],
    *,
    group_by: None = None,
    prefilter: Q | None = None,
    combined: bool | None = None,
) -> dict[str, Any]: ...


@overload
def aggregate_by(
    queryset: QuerySet[Any],
    aggregates: Mapping[str, Aggregate],
    *,
    group_by: GroupKey,
    prefilter: Q | None = None,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
    combined: bool | None = None,
) -> dict[Any, dict[str, Any]]: ...


def aggregate_by(
    queryset: QuerySet[Any],
    aggregates: Mapping[str, Aggregate],
    *,
    group_by: GroupKey | None = None,
    prefilter: Q | None = None,
    keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
    combined: bool | None = None,
) -> dict[Any, Any]:
    """Compute Django aggregates (``Sum``, ``Avg``, ``Count``...) per group.

    Aggregates over different multi-valued relations (``Count("equipment")``
    and ``Sum("equipment__schedules__frequency_days")`` per location) run in
    separate queries, so one relation's rows never multiply another's.
    ``prefilter``, ``keys``, ``fill_choices`` and ``combined`` work as in
    :func:`conditional_counts`. A named group without rows gets what the
    aggregate gives over no rows: 0 for ``Count``, otherwise its ``default``
    (``None`` unless set).
    """
    rows = _rows(queryset, prefilter)
    group = () if group_by is None else (group_by,)

    results = _aggregate(rows, group, aggregates, combined)

    return _per_group(queryset, group_by, aggregates, results, keys, fill_choices)


def pivot(
    queryset: QuerySet[Any],
    rows: GroupKey,
    columns: GroupKey,
    *,
    row_keys: Iterable[Hashable] | None = None,
    column_keys: Iterable[Hashable] | None = None,
    fill_choices: bool = True,
) -> PivotTable:
    """Count rows by two fields as a table with row, column and grand totals.

    Every row holds every column, 0 where no row matches. Totals are sums of
    the cells. One query.
    """
    counts = _count_rows(queryset, (rows, columns))

    row_order = _ordered(
        _required_keys(queryset, rows, row_keys, fill_choices),
        (row for row, _ in counts),
    )
    column_order = _ordered(
        _required_keys(queryset, columns, column_keys, fill_choices),
        (column for _, column in counts),
    )

    table = {
        row: {column: counts.get((row, column), 0) for column in column_order}
        for row in row_order
    }
    row_totals = {row: sum(cells.values()) for row, cells in table.items()}
    column_totals = {
        column: sum(cells[column] for cells in table.values())
        for column in column_order
    }
    return {
        "rows": table,
        "row_totals": row_totals,
        "column_totals": column_totals,
        "total": sum(row_totals.values()),
    }


def count_by_period(
    queryset: QuerySet[Any],
    field: str,
    period: Period,
    *,
    first: datetime.date | None = None,
    last: datetime.date | None = None,
    fill: bool = True,
) -> dict[datetime.date, int]:
    """Count rows per day, week, month, quarter or year of a date or datetime field.

    Keys are the local start dates of the periods, in the current time zone.
    ``first`` and ``last`` (dates, or datetimes taken in local time) bound the
    periods counted, both included. With ``fill`` every period from the first
    to the last is present, 0 where no row falls in it. Rows whose field is
    empty are not counted. One query.
    """
    start = _period_floor(_local_date(first), period) if first is not None else None
    end = _period_floor(_local_date(last), period) if last is not None else None

    rows = queryset
    if start is not None:
        rows = rows.filter(**{f"{field}__gte": _period_boundary(rows, field, start)})
    if end is not None:
        after = _period_boundary(rows, field, _next_period(end, period))
        rows = rows.filter(**{f"{field}__lt": after})

    counts = {
        key: count
        for (key,), count in _count_rows(rows, (PeriodStart(field, period),)).items()
        # Where a DST change repeats local midnight, a row in the repeated
        # hour is inside the bounds but truncates to the day before them.
        if key is not None
        and (start is None or key >= start)
        and (end is None or key <= end)
    }
    if not fill or (not counts and (start is None or end is None)):
        return dict(sorted(counts.items()))

    periods = _period_starts(
        start if start is not None else min(counts),
        end if end is not None else max(counts),
        period,
    )
    return {day: counts.get(day, 0) for day in periods}


@dataclass(frozen=True)
class _Batch:
    """Aggregates that one query computes, behind an optional ``WHERE``."""

    aggregates: dict[str, Aggregate]
    where: Q | None


def _rows(queryset: QuerySet[Any], prefilter: Q | None) -> QuerySet[Any]:
    """Return the rows to aggregate, each once, with no ordering."""
    if prefilter is not None:
        queryset = queryset.filter(prefilter)

    query = queryset.query
    if (
        query.is_sliced
        or query.distinct
        or query.combinator
        or query.group_by is not None
        or _repeating_joins(query)
    ):
        # Grouping such a query would count a row once per joined match, or
        # ignore the slice; a semi-join keeps exactly the rows it returns.
        ids = (
            queryset.values("pk")
            if query.is_sliced
            else queryset.order_by().values("pk")
        )
        manager = queryset.model._base_manager.db_manager(queryset.db)
        semi_joined: QuerySet[Any] = manager.filter(pk__in=ids)
        queryset = semi_joined

    # An ordering, explicit or from Meta.ordering, would join GROUP BY.
    unordered: QuerySet[Any] = queryset.order_by()
    return unordered


def _key_expressions(group_by: Sequence[GroupKey]) -> dict[str, Combinable]:
    return {
        KEY_ALIAS.format(index): F(key) if isinstance(key, str) else key
        for index, key in enumerate(group_by)
    }


def _count_rows(
    queryset: QuerySet[Any], group_by: Sequence[GroupKey]
) -> dict[tuple[Any, ...], int]:
    """Count rows per tuple of group values, in one query."""
    rows = _rows(queryset, None)
    keys = _key_expressions(group_by)
    count = Count("pk", distinct=_repeats_rows(rows, group_by))

    grouped = rows.values(**keys).annotate(**{COUNT_ALIAS: count})

    return {tuple(row[alias] for alias in keys): row[COUNT_ALIAS] for row in grouped}


def _aggregate(
    rows: QuerySet[Any],
    group_by: Sequence[GroupKey],
    aggregates: Mapping[str, Aggregate],
    combined: bool | None,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Run ``aggregates`` per tuple of group values, in as few queries as is safe."""
    if combined is None:
        combined = connections[rows.db].vendor != "sqlite"
    keys = _key_expressions(group_by)

    results: dict[tuple[Any, ...], dict[str, Any]] = {}
    for batch in _batches(rows, keys, aggregates, combined):
        query = rows if batch.where is None else rows.filter(batch.where)
        names = {
            VALUE_ALIAS.format(index): name
            for index, name in enumerate(batch.aggregates)
        }
        annotations = {alias: batch.aggregates[name] for alias, name in names.items()}

        if not keys:
            row = query.aggregate(**annotations)
            results.setdefault((), {}).update({names[a]: v for a, v in row.items()})
            continue

        for row in query.values(**keys).annotate(**annotations):
            values = results.setdefault(tuple(row[alias] for alias in keys), {})
            values.update({name: row[alias] for alias, name in names.items()})
    return results


def _batches(
    rows: QuerySet[Any],
    keys: Mapping[str, Combinable],
    aggregates: Mapping[str, Aggregate],
    combined: bool,
) -> list[_Batch]:
    """Split ``aggregates`` into the queries that compute them."""
    grouped = rows.values(**keys) if keys else rows
    shared = Counter(_repeating_joins(grouped.query))

    # Aggregates through different multi-valued relations would multiply each
    # other's rows in one query, so each set of such relations gets its own.
    by_relations: dict[frozenset[Any], dict[str, Aggregate]] = {}
    for name, aggregate in aggregates.items():
        probe = grouped.annotate(mperf_probe=aggregate)
        extra = Counter(_repeating_joins(probe.query)) - shared
        by_relations.setdefault(frozenset(extra.items()), {})[name] = aggregate

    batches = []
    for group in by_relations.values():
        conditions = {name: _condition(aggregate) for name, aggregate in group.items()}
        if combined:
            batches.append(_combined_batch(group, conditions))
            continue

        unconditional = {n: a for n, a in group.items() if conditions[n] is None}
        if unconditional:
            batches.append(_Batch(unconditional, None))
        for name, condition in conditions.items():
            if condition is not None:
                batches.append(_Batch({name: _without_filter(group[name])}, condition))
    return batches


def _combined_batch(
    aggregates: dict[str, Aggregate], conditions: Mapping[str, Q | None]
) -> _Batch:
    """Compute ``aggregates`` in one query, behind the OR of their conditions."""
    if any(condition is None for condition in conditions.values()):
        return _Batch(aggregates, None)

    # Rows no figure counts are skipped before the FILTER clauses see them,
    # which on PostgreSQL lets the planner use the conditions' indexes.
    where = reduce(operator.or_, (c for c in conditions.values() if c is not None))
    if len(aggregates) == 1:
        aggregates = {name: _without_filter(a) for name, a in aggregates.items()}
    return _Batch(aggregates, where)


def _condition(aggregate: Aggregate) -> Q | None:
    """Return the aggregate's ``filter`` condition as a ``Q``, or ``None``."""
    # Django 6.0 wraps the condition in an expression that renders the
    # "FILTER (WHERE ...)" clause and cannot go in WHERE itself; its
    # ``condition`` is what the caller gave. Older versions keep it bare.
    condition = getattr(aggregate, "filter", None)
    condition = getattr(condition, "condition", condition)

    if not condition:
        return None
    return condition if isinstance(condition, Q) else Q(condition)


def _without_filter(aggregate: Aggregate) -> Aggregate:
    bare: Aggregate = aggregate.copy()
    bare.filter = None
    return bare


def _semi_join(rows: QuerySet[Any], condition: Q) -> Q | None:
    """Return ``condition``, rewritten so that it cannot repeat a row."""
    if not condition:
        return None

    matching = rows.model._base_manager.db_manager(rows.db).filter(condition)
    if not _repeating_joins(matching.query):
        return condition
    return Q(pk__in=matching.order_by().values("pk"))


def _repeating_joins(query: Query) -> list[tuple[Any, ...]]:
    """Return the joins of ``query`` that can repeat a row, as relation chains."""
    chains = []
    for alias in query.alias_map:
        chain = _relation_chain(query, alias)
        if any(isinstance(step, ForeignObjectRel) and step.multiple for step in chain):
            chains.append(chain)
    return chains


def _relation_chain(query: Query, alias: str) -> tuple[Any, ...]:
    chain = []
    join = query.alias_map[alias]
    while isinstance(join, Join):
        chain.append(join.join_field)
        join = query.alias_map[join.parent_alias]
    return tuple(reversed(chain))


def _repeats_rows(rows: QuerySet[Any], group_by: Sequence[GroupKey]) -> bool:
    """Tell whether grouping ``rows`` by ``group_by`` joins a multi-valued relation."""
    if not group_by:
        return False
    return bool(_repeating_joins(rows.values(**_key_expressions(group_by)).query))


def _per_group(
    queryset: QuerySet[Any],
    group_by: GroupKey | None,
    aggregates: Mapping[str, Aggregate],
    results: Mapping[tuple[Any, ...], Mapping[str, Any]],
    keys: Iterable[Hashable] | None,
    fill_choices: bool,
) -> dict[Any, Any]:
    """Shape ``results`` as one dict of figures, or one per group value."""
    empty = {name: _empty_value(aggregate) for name, aggregate in aggregates.items()}

    def figures(key: tuple[Any, ...]) -> dict[str, Any]:
        found = results.get(key, {})
        return {name: found.get(name, value) for name, value in empty.items()}

    if group_by is None:
        if keys is not None:
            raise TypeError("keys name values of group_by, which is not given")
        return figures(())

    required = _required_keys(queryset, group_by, keys, fill_choices)
    found = (key[0] for key in results)
    return {key: figures((key,)) for key in _ordered(required, found)}


def _empty_value(aggregate: Aggregate) -> Any:
    """Return what ``aggregate`` gives over no rows."""
    if aggregate.empty_result_set_value is not None:
        return aggregate.empty_result_set_value
    default = getattr(aggregate, "default", None)
    if isinstance(default, Value):
        return default.value
    # Another expression as default has no value without a query.
    return None if hasattr(default, "resolve_expression") else default


def _required_keys(
    queryset: QuerySet[Any],
    group_by: GroupKey,
    keys: Iterable[Hashable] | None,
    fill_choices: bool,
) -> list[Any]:
    """Return the values of ``group_by`` that must appear: ``keys``, then choices."""
    required = list(keys) if keys is not None else []
    if fill_choices and isinstance(group_by, str):
        field = _model_field(queryset.model, group_by)
        required += [value for value, _ in getattr(field, "flatchoices", ())]
    return list(dict.fromkeys(required))


def _model_field(model: type[Model], path: str) -> Field[Any, Any] | None:
    """Return the model field at the end of ``path``, or ``None`` if it is not one."""
    field: Any = None
    for part in path.split(LOOKUP_SEP):
        if field is not None:
            if not field.is_relation:
                return None
            model = field.related_model
        try:
            field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
    return field  # type: ignore[no-any-return]


def _ordered(required: Iterable[Any], found: Iterable[Any]) -> list[Any]:
    """Return ``required`` in its order, then the other ``found`` keys sorted."""
    ordered = dict.fromkeys(required)
    extra = [key for key in dict.fromkeys(found) if key not in ordered]
    # Keys of mixed types have no order; then the database's order stays.
    with contextlib.suppress(TypeError):
        extra = sorted(extra, key=lambda key: (key is not None, key))
    return [*ordered, *extra]


def _nest(
    counts: Mapping[tuple[Any, ...], int], required: Sequence[Sequence[Any]]
) -> dict[Any, Any]:
    """Turn counts keyed by tuples into nested dicts, one level per tuple item."""
    level = _ordered(required[0], (key[0] for key in counts))
    if len(required) == 1:
        return {key: counts.get((key,), 0) for key in level}

    children: dict[Any, dict[tuple[Any, ...], int]] = {key: {} for key in level}
    for key, count in counts.items():
        children[key[0]][key[1:]] = count
    return {key: _nest(children[key], required[1:]) for key in level}


def _local_date(value: datetime.date) -> datetime.date:
    if not isinstance(value, datetime.datetime):
        return value
    if timezone.is_aware(value):
        return timezone.localtime(value).date()
    return value.date()


def _period_floor(day: datetime.date, period: Period) -> datetime.date:
    """Return the first day of the period holding ``day``."""
    if period == "day":
        return day
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _next_period(start: datetime.date, period: Period) -> datetime.date:
    """Return the first day of the period after the one starting on ``start``."""
    if period == "day":
        return start + datetime.timedelta(days=1)
    if period == "week":
        return start + datetime.timedelta(weeks=1)

    months = {"month": 1, "quarter": 3, "year": 12}[period]
    index = start.year * 12 + start.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def _period_starts(
    first: datetime.date, last: datetime.date, period: Period
) -> list[datetime.date]:
    starts = []
    day = first
    while day <= last:
        starts.append(day)
        day = _next_period(day, period)
    return starts


def _period_boundary(
    queryset: QuerySet[Any], field: str, day: datetime.date
) -> datetime.date:
    """Return the first instant of ``day`` in the type ``field`` compares with."""
    model_field = _model_field(queryset.model, field)
    if model_field is None:
        annotation = queryset.query.annotations.get(field)
        model_field = annotation.output_field if annotation is not None else None
    if not isinstance(model_field, DateTimeField):
        return day

    local = timezone.get_current_timezone() if settings.USE_TZ else None
    return datetime.datetime.combine(day, datetime.time(), local)
