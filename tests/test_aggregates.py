from __future__ import annotations

import contextlib
import datetime
import itertools
import pickle
import zoneinfo
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, F, OuterRef, Q, Sum, Value
from django.test import override_settings
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from core.models import Location
from dashboard import naive
from equipment.models import Equipment
from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity, MaintenanceSchedule
from maintenance_perf.aggregates import (
    PeriodStart,
    aggregate_by,
    conditional_counts,
    count_by,
    count_by_period,
    parent_or_self,
    pivot,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_django import DjangoAssertNumQueries

pytestmark = pytest.mark.django_db

Activity = MaintenanceActivity
EQUIPMENT_STATUSES = [value for value, _ in Equipment.STATUS]
ACTIVITY_STATUSES = [value for value, _ in Activity.STATUS]
UTC = datetime.timezone.utc
#: A Wednesday, mid-morning in UTC.
NOW = datetime.datetime(2024, 3, 13, 10, 0, tzinfo=UTC)
SOON = NOW + datetime.timedelta(days=naive.DUE_SOON_DAYS)
ZONES = [
    "UTC",
    "Asia/Tokyo",
    "America/New_York",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
]
SQLITE = connection.vendor == "sqlite"

OVERDUE = Q(status=Activity.STATUS.overdue) | Q(
    status__in=[Activity.STATUS.scheduled, Activity.STATUS.in_progress],
    scheduled_end__lt=NOW,
)
DUE_SOON = Q(
    status=Activity.STATUS.scheduled, scheduled_start__gte=NOW, scheduled_start__lt=SOON
)

codes = itertools.count()


def location(parent: Location | None = None) -> Location:
    code = f"L{next(codes)}"
    return Location.objects.create(name=code, code=code, parent=parent)


def equipment(place: Location, status: str = "operational") -> Equipment:
    code = f"E{next(codes)}"
    return Equipment.objects.create(name=code, code=code, location=place, status=status)


def activity(
    machine: Equipment,
    status: str = "scheduled",
    start: datetime.datetime = NOW,
    actual_end: datetime.datetime | None = None,
) -> MaintenanceActivity:
    return Activity.objects.create(
        title="work",
        equipment=machine,
        status=status,
        scheduled_start=start,
        scheduled_end=start + datetime.timedelta(hours=4),
        actual_end=actual_end,
    )


def event(machine: Equipment | None, is_completed: bool = False) -> CalendarEvent:
    return CalendarEvent.objects.create(
        title="event", equipment=machine, event_date=NOW, is_completed=is_completed
    )


def schedule(machine: Equipment, frequency_days: int) -> MaintenanceSchedule:
    return MaintenanceSchedule.objects.create(
        title="plan",
        equipment=machine,
        frequency_days=frequency_days,
        next_due_date=NOW.date(),
    )


def local(
    zone: str, year: int, month: int, day: int, hour: int, minute: int
) -> datetime.datetime:
    return datetime.datetime(
        year, month, day, hour, minute, tzinfo=zoneinfo.ZoneInfo(zone)
    )


def plain(value: object) -> bool:
    """Tell whether ``value`` is built only from plain, cacheable Python data."""
    if isinstance(value, dict):
        return all(plain(key) and plain(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(plain(item) for item in value)
    return value is None or type(value) in {
        int,
        float,
        str,
        bool,
        datetime.date,
        datetime.datetime,
    }


# count_by


def test_count_by_status_fills_every_declared_status() -> None:
    site = location()
    equipment(site, "operational")
    equipment(site, "operational")
    equipment(site, "retired")

    counts = count_by(Equipment.objects.all(), "status")

    assert counts == {
        "operational": 2,
        "in_maintenance": 0,
        "out_of_service": 0,
        "retired": 1,
    }
    assert list(counts) == EQUIPMENT_STATUSES


def test_count_by_without_choice_filling_lists_only_found_values() -> None:
    equipment(location(), "retired")

    assert count_by(Equipment.objects.all(), "status", fill_choices=False) == {
        "retired": 1
    }


def test_count_by_named_keys_appear_with_zero() -> None:
    busy, empty = location(), location()
    equipment(busy)

    counts = count_by(Equipment.objects.all(), "location", keys=[empty.pk, busy.pk])

    assert counts == {empty.pk: 0, busy.pk: 1}
    assert list(counts) == [empty.pk, busy.pk]


def test_count_by_two_fields_nests_and_fills_inner_choices() -> None:
    first, second, empty = location(), location(), location()
    equipment(first, "operational")
    equipment(first, "in_maintenance")
    equipment(second, "in_maintenance")
    zero = dict.fromkeys(EQUIPMENT_STATUSES, 0)

    counts = count_by(Equipment.objects.all(), "location", "status", keys=[empty.pk])

    assert counts == {
        empty.pk: zero,
        first.pk: {**zero, "operational": 1, "in_maintenance": 1},
        second.pk: {**zero, "in_maintenance": 1},
    }


def test_count_by_three_fields_nests_three_levels() -> None:
    place = location()
    machine = equipment(place, "in_maintenance")
    activity(machine, "overdue")

    counts = count_by(
        Activity.objects.all(),
        "equipment__location",
        "equipment__status",
        "status",
        fill_choices=False,
    )

    assert counts == {place.pk: {"in_maintenance": {"overdue": 1}}}


def test_count_by_needs_a_field() -> None:
    with pytest.raises(TypeError, match="at least one field"):
        count_by(Equipment.objects.all())  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "queryset",
    [
        pytest.param(lambda: Location.objects.all(), id="meta-ordering"),
        pytest.param(lambda: Location.objects.order_by("name"), id="order-by-name"),
        pytest.param(
            lambda: Location.objects.order_by("-code", "pk"), id="order-by-two"
        ),
    ],
)
def test_count_by_ordering_outside_the_group_is_ignored(queryset: Any) -> None:
    site = location()
    for _ in range(3):
        location(parent=site)

    assert count_by(queryset(), "parent") == {None: 1, site.pk: 3}


def test_count_by_activity_ordering_does_not_split_statuses() -> None:
    machine = equipment(location())
    for day in range(3):
        activity(machine, "completed", start=NOW + datetime.timedelta(days=day))

    counts = count_by(Activity.objects.order_by("-scheduled_start"), "status")

    assert counts["completed"] == 3


def test_count_by_filter_across_a_relation_counts_each_row_once() -> None:
    site = location()
    place = location(parent=site)
    for _ in range(3):
        equipment(place, "in_maintenance")
    equipment(location(parent=site), "operational")
    queryset = Location.objects.filter(equipment__status="in_maintenance")

    assert count_by(queryset, "parent") == {site.pk: 1}


def test_count_by_group_through_a_relation_counts_rows_per_value() -> None:
    place, other = location(), location()
    equipment(place, "operational")
    equipment(place, "operational")
    equipment(place, "retired")
    equipment(other, "operational")

    counts = count_by(Location.objects.all(), "equipment__status", fill_choices=False)

    assert counts == {"operational": 2, "retired": 1}


@pytest.mark.parametrize(
    "queryset",
    [
        pytest.param(lambda: Equipment.objects.order_by("code")[:2], id="sliced"),
        pytest.param(
            lambda: Equipment.objects.filter(activities__status="overdue").distinct(),
            id="distinct",
        ),
        pytest.param(
            lambda: (
                Equipment.objects.filter(status="retired")
                .order_by()
                .union(Equipment.objects.filter(status="retired").order_by())
            ),
            id="union",
        ),
        pytest.param(
            lambda: Equipment.objects.annotate(work=Count("activities")).filter(
                work__gt=0
            ),
            id="annotated",
        ),
    ],
)
def test_count_by_queryset_shapes_count_the_rows_they_return(queryset: Any) -> None:
    place = location()
    first = equipment(place, "retired")
    second = equipment(place, "retired")
    equipment(location(), "operational")
    for machine in (first, first, second):
        activity(machine, "overdue")

    counts = count_by(queryset(), "location", fill_choices=False)

    assert counts == {place.pk: 2}


def test_count_by_nullable_group_puts_empty_first() -> None:
    site = location()
    location(parent=site)
    location()

    assert list(count_by(Location.objects.all(), "parent")) == [None, site.pk]


def test_count_by_expression_with_a_transform() -> None:
    machine = equipment(location())
    activity(machine, start=datetime.datetime(2023, 6, 1, tzinfo=UTC))
    activity(machine, start=NOW)

    counts = count_by(Activity.objects.all(), "scheduled_start__year")

    assert counts == {2023: 1, 2024: 1}


def test_count_by_parent_or_self_rolls_areas_up_to_sites() -> None:
    site, lone = location(), location()
    area = location(parent=site)
    equipment(site)
    equipment(area)
    equipment(area)
    equipment(lone)

    counts = count_by(Equipment.objects.all(), parent_or_self("location"))

    assert counts == {site.pk: 3, lone.pk: 1}


def test_count_by_parent_or_self_named_sites_appear() -> None:
    site, empty = location(), location()
    equipment(location(parent=site))

    counts = count_by(
        Activity.objects.all(),
        parent_or_self("equipment__location"),
        keys=[site.pk, empty.pk],
    )

    assert counts == {site.pk: 0, empty.pk: 0}


# conditional_counts


def test_conditional_counts_per_location() -> None:
    busy, empty = location(), location()
    machine = equipment(busy)
    activity(machine, "overdue")
    activity(machine, "scheduled", start=NOW - datetime.timedelta(days=1))
    activity(machine, "scheduled", start=NOW + datetime.timedelta(days=2))
    activity(machine, "scheduled", start=NOW + datetime.timedelta(days=20))
    activity(machine, "completed", start=NOW - datetime.timedelta(days=3))

    counts = conditional_counts(
        Activity.objects.all(),
        group_by="equipment__location",
        counts={"overdue": OVERDUE, "due_soon": DUE_SOON},
        keys=[busy.pk, empty.pk],
    )

    assert counts == {
        busy.pk: {"overdue": 2, "due_soon": 1},
        empty.pk: {"overdue": 0, "due_soon": 0},
    }


def test_conditional_counts_without_group_counts_the_whole_queryset() -> None:
    place = location()
    equipment(place, "in_maintenance")
    equipment(place)

    counts = conditional_counts(
        Equipment.objects.all(),
        {"all": Q(), "in_maintenance": Q(status="in_maintenance"), "lost": Q(pk=0)},
    )

    assert counts == {"all": 2, "in_maintenance": 1, "lost": 0}


def test_conditional_counts_keys_need_a_group() -> None:
    with pytest.raises(TypeError, match="keys name values of group_by"):
        conditional_counts(
            Equipment.objects.all(),
            {"all": Q()},
            keys=[1],  # type: ignore[call-overload]
        )


def test_conditional_counts_prefilter_narrows_every_count() -> None:
    place = location()
    machine = equipment(place)
    activity(machine, "overdue")
    activity(machine, "cancelled", start=NOW + datetime.timedelta(days=1))

    counts = conditional_counts(
        Activity.objects.all(),
        group_by="equipment__location",
        counts={"all": Q(), "soon": Q(scheduled_start__lt=SOON)},
        prefilter=Q(status__in=Activity.OPEN_STATUSES),
    )

    assert counts == {place.pk: {"all": 1, "soon": 1}}


def test_conditional_counts_group_by_status_fills_choices() -> None:
    activity(equipment(location()), "overdue")

    counts = conditional_counts(
        Activity.objects.all(), {"late": OVERDUE}, group_by="status"
    )

    assert list(counts) == ACTIVITY_STATUSES
    assert counts["overdue"] == {"late": 1}
    assert counts["completed"] == {"late": 0}


def test_conditional_counts_condition_through_a_relation_counts_each_row_once() -> None:
    site = location()
    busy = location(parent=site)
    for _ in range(3):
        equipment(busy, "in_maintenance")
    equipment(location(parent=site), "operational")

    counts = conditional_counts(
        Location.objects.all(),
        group_by="parent",
        counts={
            "in_maintenance": Q(equipment__status="in_maintenance"),
            "with_equipment": Q(equipment__isnull=False),
        },
        keys=[site.pk],
    )

    # The site itself has no parent, but no count matches it, so None is absent.
    assert counts == {site.pk: {"in_maintenance": 1, "with_equipment": 2}}


def test_conditional_counts_combined_is_one_query_behind_a_where(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    activity(equipment(location()), "overdue")

    with django_assert_num_queries(1) as captured:
        conditional_counts(
            Activity.objects.all(),
            group_by="equipment__location",
            counts={"overdue": OVERDUE, "due_soon": DUE_SOON},
            combined=True,
        )

    sql = captured.captured_queries[0]["sql"]
    assert " WHERE " in sql
    if connection.features.supports_aggregate_filter_clause:
        assert sql.count(" FILTER ") == 2


def test_conditional_counts_combined_with_an_unconditional_count_has_no_where(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_num_queries(1) as captured:
        conditional_counts(
            Activity.objects.all(),
            group_by="equipment__location",
            counts={"all": Q(), "overdue": OVERDUE},
            combined=True,
        )

    assert " WHERE " not in captured.captured_queries[0]["sql"]


def test_conditional_counts_per_figure_is_one_plain_query_each(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_num_queries(3) as captured:
        conditional_counts(
            Activity.objects.all(),
            group_by="equipment__location",
            counts={"all": Q(), "overdue": OVERDUE, "due_soon": DUE_SOON},
            combined=False,
        )

    assert not any(" FILTER " in query["sql"] for query in captured.captured_queries)


def test_conditional_counts_default_shape_follows_the_database(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_num_queries(2 if SQLITE else 1):
        conditional_counts(
            Activity.objects.all(),
            group_by="equipment__location",
            counts={"overdue": OVERDUE, "due_soon": DUE_SOON},
        )


def test_conditional_counts_no_counts_runs_no_query(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_num_queries(0):
        counts = conditional_counts(
            Equipment.objects.all(), {}, group_by="location", keys=[1]
        )

    assert counts == {1: {}}


# aggregate_by


def test_aggregate_by_sum_and_average_per_group() -> None:
    place, other = location(), location()
    schedule(equipment(place), 10)
    schedule(equipment(place), 20)
    schedule(equipment(other), 7)

    figures = aggregate_by(
        MaintenanceSchedule.objects.all(),
        {"days": Sum("frequency_days"), "mean": Avg("frequency_days")},
        group_by="equipment__location",
    )

    assert figures == {
        place.pk: {"days": 30, "mean": 15.0},
        other.pk: {"days": 7, "mean": 7.0},
    }


def test_aggregate_by_relations_of_one_parent_do_not_multiply() -> None:
    place, empty = location(), location()
    first, second = equipment(place), equipment(place)
    for machine in (first, first, first, second):
        event(machine)
    event(first, is_completed=True)
    schedule(first, 10)
    schedule(first, 5)
    aggregates = {
        "machines": Count("equipment"),
        "open_events": Count(
            "equipment__calendar_events",
            filter=Q(equipment__calendar_events__is_completed=False),
        ),
        "days": Sum("equipment__schedules__frequency_days", default=0),
    }

    figures = aggregate_by(Location.objects.all(), aggregates, group_by="pk")

    assert figures == {
        place.pk: {"machines": 2, "open_events": 4, "days": 15},
        empty.pk: {"machines": 0, "open_events": 0, "days": 0},
    }
    # The same aggregates in one hand-written query are inflated by the joins.
    naive_row = Location.objects.values("pk").annotate(
        n_machines=aggregates["machines"], n_days=aggregates["days"]
    )
    assert naive_row.get(pk=place.pk) != {"pk": place.pk, "n_machines": 2, "n_days": 15}


def test_aggregate_by_relations_run_one_query_per_relation(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    with django_assert_num_queries(3):
        aggregate_by(
            Location.objects.all(),
            {
                "machines": Count("equipment"),
                "in_maintenance": Count(
                    "equipment", filter=Q(equipment__status="in_maintenance")
                ),
                "events": Count("equipment__calendar_events"),
                "days": Sum("equipment__schedules__frequency_days"),
            },
            group_by="pk",
            combined=True,
        )


def test_aggregate_by_without_group_gives_one_dict() -> None:
    place = location()
    schedule(equipment(place), 3)
    schedule(equipment(place), 4)

    figures = aggregate_by(
        Location.objects.all(),
        {
            "machines": Count("equipment"),
            "days": Sum("equipment__schedules__frequency_days"),
            "short": Count(
                "equipment__schedules",
                filter=Q(equipment__schedules__frequency_days__lt=4),
            ),
        },
    )

    assert figures == {"machines": 2, "days": 7, "short": 1}


@pytest.mark.parametrize("combined", [True, False])
def test_aggregate_by_conditional_aggregates_in_either_shape(combined: bool) -> None:
    place = location()
    schedule(equipment(place), 3)
    schedule(equipment(place, "retired"), 30)

    figures = aggregate_by(
        MaintenanceSchedule.objects.all(),
        {
            "active_days": Sum(
                "frequency_days", filter=~Q(equipment__status="retired")
            ),
            "retired_days": Sum(
                "frequency_days", filter=Q(equipment__status="retired")
            ),
        },
        group_by="equipment__location",
        combined=combined,
    )

    assert figures == {place.pk: {"active_days": 3, "retired_days": 30}}


def test_aggregate_by_expression_condition() -> None:
    place = location()
    busy = equipment(place)
    equipment(place)
    activity(busy, "overdue")
    has_overdue = Exists(
        Activity.objects.filter(equipment=OuterRef("pk"), status="overdue")
    )

    for combined in (True, False):
        figures = aggregate_by(
            Equipment.objects.all(),
            {"late": Count("pk", filter=has_overdue)},
            group_by="location",
            combined=combined,
        )
        assert figures == {place.pk: {"late": 1}}


def test_aggregate_by_per_figure_puts_each_condition_in_where(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    place = location()
    busy = equipment(place)
    equipment(place, "retired")
    activity(busy, "overdue")
    has_overdue = Exists(
        Activity.objects.filter(equipment=OuterRef("pk"), status="overdue")
    )

    with django_assert_num_queries(2) as captured:
        figures = aggregate_by(
            Equipment.objects.all(),
            {
                "late": Count("pk", filter=has_overdue),
                "retired": Count("pk", filter=Q(status="retired")),
            },
            group_by="location",
            combined=False,
        )

    assert figures == {place.pk: {"late": 1, "retired": 1}}
    for query in captured.captured_queries:
        assert " WHERE " in query["sql"]
        assert " FILTER " not in query["sql"]


@pytest.mark.parametrize(
    ("aggregate", "empty"),
    [
        pytest.param(Count("pk"), 0, id="count"),
        pytest.param(Sum("frequency_days"), None, id="sum"),
        pytest.param(Sum("frequency_days", default=0), 0, id="sum-default"),
        pytest.param(Sum("frequency_days", default=Value(-1)), -1, id="sum-value"),
        pytest.param(Sum("frequency_days", default=F("pk")), None, id="sum-expression"),
        pytest.param(Avg("frequency_days"), None, id="average"),
    ],
)
def test_aggregate_by_named_key_without_rows_gets_the_empty_value(
    aggregate: Any, empty: object
) -> None:
    figures = aggregate_by(
        MaintenanceSchedule.objects.all(),
        {"figure": aggregate},
        group_by="equipment__location",
        keys=[42],
    )

    assert figures == {42: {"figure": empty}}


# pivot


def test_pivot_location_by_status_with_totals() -> None:
    first, second, empty = location(), location(), location()
    equipment(first, "operational")
    equipment(first, "operational")
    equipment(first, "retired")
    equipment(second, "in_maintenance")
    zero = dict.fromkeys(EQUIPMENT_STATUSES, 0)

    table = pivot(Equipment.objects.all(), "location", "status", row_keys=[empty.pk])

    assert table == {
        "rows": {
            empty.pk: zero,
            first.pk: {**zero, "operational": 2, "retired": 1},
            second.pk: {**zero, "in_maintenance": 1},
        },
        "row_totals": {empty.pk: 0, first.pk: 3, second.pk: 1},
        "column_totals": {**zero, "operational": 2, "in_maintenance": 1, "retired": 1},
        "total": 4,
    }


def test_pivot_every_row_holds_every_column() -> None:
    first, second = location(), location()
    equipment(first, "retired")
    equipment(second, "operational")

    table = pivot(
        Equipment.objects.all(),
        "status",
        "location",
        column_keys=[second.pk],
        fill_choices=False,
    )

    assert table["rows"] == {
        "operational": {second.pk: 1, first.pk: 0},
        "retired": {second.pk: 0, first.pk: 1},
    }
    assert table["column_totals"] == {second.pk: 1, first.pk: 1}


def test_pivot_sites_by_status_in_one_query(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    site = location()
    equipment(location(parent=site), "retired")
    equipment(site, "operational")

    with django_assert_num_queries(1):
        table = pivot(Equipment.objects.all(), parent_or_self("location"), "status")

    assert table["row_totals"] == {site.pk: 2}
    assert table["rows"][site.pk]["retired"] == 1


# count_by_period


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("switch", ["override_settings", "timezone.override"])
def test_count_by_period_day_is_the_local_date(zone: str, switch: str) -> None:
    machine = equipment(location())
    activity(machine, start=local(zone, 2024, 3, 10, 23, 30))
    activity(machine, start=local(zone, 2024, 3, 11, 0, 30))
    activity(machine, start=local(zone, 2024, 3, 11, 23, 59))

    if switch == "override_settings":
        with override_settings(TIME_ZONE=zone):
            counts = count_by_period(Activity.objects.all(), "scheduled_start", "day")
    else:
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            counts = count_by_period(Activity.objects.all(), "scheduled_start", "day")

    assert counts == {datetime.date(2024, 3, 10): 1, datetime.date(2024, 3, 11): 2}


@pytest.mark.parametrize("zone", ZONES)
def test_count_by_period_week_starts_on_local_monday(zone: str) -> None:
    machine = equipment(location())
    activity(machine, start=local(zone, 2024, 3, 10, 23, 30))  # a Sunday
    activity(machine, start=local(zone, 2024, 3, 11, 0, 15))  # the Monday after

    with timezone.override(zoneinfo.ZoneInfo(zone)):
        counts = count_by_period(Activity.objects.all(), "scheduled_start", "week")

    assert counts == {datetime.date(2024, 3, 4): 1, datetime.date(2024, 3, 11): 1}


def test_count_by_period_bounded_range_is_continuous_and_zero_filled() -> None:
    machine = equipment(location())
    zone = "America/New_York"
    activity(machine, start=local(zone, 2024, 1, 1, 0, 0))  # before the range
    activity(machine, start=local(zone, 2024, 1, 15, 0, 0))  # first local minute
    activity(machine, start=local(zone, 2024, 3, 10, 3, 0))  # the DST change day
    activity(machine, start=local(zone, 2024, 3, 17, 23, 59))  # last local minute
    activity(machine, start=local(zone, 2024, 3, 18, 0, 0))  # after the range

    with timezone.override(zoneinfo.ZoneInfo(zone)):
        counts = count_by_period(
            Activity.objects.all(),
            "scheduled_start",
            "week",
            first=datetime.date(2024, 1, 17),
            last=local(zone, 2024, 3, 14, 12, 0),
        )

    mondays = [
        datetime.date(2024, 1, 15) + datetime.timedelta(weeks=n) for n in range(9)
    ]
    assert list(counts) == mondays
    assert counts[mondays[0]] == 1
    assert counts[datetime.date(2024, 3, 4)] == 1
    assert counts[mondays[-1]] == 1
    assert sum(counts.values()) == 3


def test_count_by_period_without_fill_lists_only_busy_periods() -> None:
    machine = equipment(location())
    activity(machine, start=datetime.datetime(2024, 1, 5, tzinfo=UTC))
    activity(machine, start=datetime.datetime(2024, 4, 5, tzinfo=UTC))

    counts = count_by_period(
        Activity.objects.all(), "scheduled_start", "month", fill=False
    )

    assert counts == {datetime.date(2024, 1, 1): 1, datetime.date(2024, 4, 1): 1}


def test_count_by_period_fill_spans_the_rows_found() -> None:
    machine = equipment(location())
    activity(machine, start=datetime.datetime(2023, 11, 5, tzinfo=UTC))
    activity(machine, start=datetime.datetime(2024, 2, 5, tzinfo=UTC))

    counts = count_by_period(Activity.objects.all(), "scheduled_start", "month")

    assert counts == {
        datetime.date(2023, 11, 1): 1,
        datetime.date(2023, 12, 1): 0,
        datetime.date(2024, 1, 1): 0,
        datetime.date(2024, 2, 1): 1,
    }


def test_count_by_period_no_rows_without_bounds_is_empty() -> None:
    assert count_by_period(Activity.objects.all(), "scheduled_start", "day") == {}


def test_count_by_period_no_rows_with_bounds_is_all_zero() -> None:
    counts = count_by_period(
        Activity.objects.all(),
        "actual_end",
        "quarter",
        first=datetime.date(2023, 11, 20),
        last=datetime.date(2024, 5, 1),
    )

    assert counts == {
        datetime.date(2023, 10, 1): 0,
        datetime.date(2024, 1, 1): 0,
        datetime.date(2024, 4, 1): 0,
    }


def test_count_by_period_skips_empty_values() -> None:
    machine = equipment(location())
    activity(machine, actual_end=NOW)
    activity(machine, actual_end=None)

    counts = count_by_period(Activity.objects.all(), "actual_end", "year")

    assert counts == {datetime.date(2024, 1, 1): 1}


def test_count_by_period_date_field() -> None:
    machine = equipment(location())
    for day in (datetime.date(2024, 2, 29), datetime.date(2024, 3, 1)):
        MaintenanceSchedule.objects.create(
            title="plan", equipment=machine, frequency_days=1, next_due_date=day
        )

    with timezone.override(zoneinfo.ZoneInfo("Pacific/Kiritimati")):
        counts = count_by_period(
            MaintenanceSchedule.objects.all(),
            "next_due_date",
            "month",
            first=datetime.date(2024, 2, 10),
            last=datetime.date(2024, 3, 31),
        )

    assert counts == {datetime.date(2024, 2, 1): 1, datetime.date(2024, 3, 1): 1}


def test_count_by_period_annotated_field() -> None:
    machine = equipment(location())
    activity(machine, start=datetime.datetime(2024, 3, 4, tzinfo=UTC))
    activity(machine, start=datetime.datetime(2024, 3, 25, tzinfo=UTC))
    queryset = Activity.objects.annotate(planned=F("scheduled_start"))

    counts = count_by_period(
        queryset,
        "planned",
        "week",
        first=datetime.date(2024, 3, 1),
        last=datetime.date(2024, 3, 12),
    )

    assert counts == {
        datetime.date(2024, 2, 26): 0,
        datetime.date(2024, 3, 4): 1,
        datetime.date(2024, 3, 11): 0,
    }


def test_count_by_period_year_ends_roll_over() -> None:
    machine = equipment(location())
    activity(machine, start=datetime.datetime(2023, 12, 31, 12, tzinfo=UTC))
    activity(machine, start=datetime.datetime(2025, 1, 1, 12, tzinfo=UTC))

    counts = count_by_period(
        Activity.objects.all(),
        "scheduled_start",
        "year",
        first=datetime.date(2023, 7, 1),
        last=datetime.date(2025, 2, 1),
    )

    assert counts == {
        datetime.date(2023, 1, 1): 1,
        datetime.date(2024, 1, 1): 0,
        datetime.date(2025, 1, 1): 1,
    }


@override_settings(USE_TZ=False)
def test_count_by_period_naive_datetimes() -> None:
    machine = equipment(location())
    activity(machine, start=datetime.datetime(2024, 3, 10, 23, 30))
    activity(machine, start=datetime.datetime(2024, 3, 11, 0, 30))

    counts = count_by_period(
        Activity.objects.all(),
        "scheduled_start",
        "day",
        first=datetime.datetime(2024, 3, 10, 12, 0),
        last=datetime.date(2024, 3, 11),
    )

    assert counts == {datetime.date(2024, 3, 10): 1, datetime.date(2024, 3, 11): 1}


def test_period_start_groups_other_helpers() -> None:
    machine = equipment(location())
    activity(machine, "completed", start=datetime.datetime(2024, 3, 5, tzinfo=UTC))
    activity(machine, "overdue", start=datetime.datetime(2024, 3, 12, tzinfo=UTC))

    counts = conditional_counts(
        Activity.objects.all(),
        {"late": OVERDUE, "done": Q(status="completed")},
        group_by=PeriodStart("scheduled_start", "week"),
    )

    assert counts == {
        datetime.date(2024, 3, 4): {"late": 0, "done": 1},
        datetime.date(2024, 3, 11): {"late": 1, "done": 0},
    }


# Results are plain data


def test_results_are_plain_and_picklable() -> None:
    site = location()
    machine = equipment(location(parent=site), "in_maintenance")
    activity(machine, "overdue", actual_end=NOW)
    schedule(machine, 3)
    results = [
        count_by(Equipment.objects.all(), "location", "status"),
        conditional_counts(
            Activity.objects.all(), {"late": OVERDUE}, group_by="equipment__location"
        ),
        aggregate_by(
            Location.objects.all(),
            {"days": Sum("equipment__schedules__frequency_days")},
            group_by=parent_or_self(),
        ),
        pivot(Equipment.objects.all(), parent_or_self("location"), "status"),
        count_by_period(Activity.objects.all(), "actual_end", "week"),
    ]

    for result in results:
        assert plain(result)
        assert pickle.loads(pickle.dumps(result)) == result


# Query counts do not depend on the data


def populate(locations: int) -> list[int]:
    """Create ``locations`` locations, half of them areas, each fully equipped."""
    sites = Location.objects.bulk_create(
        Location(name=f"S{n}", code=f"S{n}") for n in range(locations - locations // 2)
    )
    areas = Location.objects.bulk_create(
        Location(name=f"A{n}", code=f"A{n}", parent=sites[n % len(sites)])
        for n in range(locations // 2)
    )
    machines = Equipment.objects.bulk_create(
        Equipment(
            name=f"E{n}",
            code=f"E{n}",
            location=place,
            status=EQUIPMENT_STATUSES[n % len(EQUIPMENT_STATUSES)],
        )
        for n, place in enumerate(sites + areas)
    )
    Activity.objects.bulk_create(
        Activity(
            title="work",
            equipment=machine,
            status=ACTIVITY_STATUSES[n % len(ACTIVITY_STATUSES)],
            scheduled_start=NOW + datetime.timedelta(days=n % 20 - 10),
            scheduled_end=NOW + datetime.timedelta(days=n % 20 - 9),
            actual_end=NOW - datetime.timedelta(days=n % 30),
        )
        for n, machine in enumerate(machines * 2)
    )
    CalendarEvent.objects.bulk_create(
        CalendarEvent(
            title="event", equipment=machine, event_date=NOW, is_completed=n % 2 == 0
        )
        for n, machine in enumerate(machines)
    )
    MaintenanceSchedule.objects.bulk_create(
        MaintenanceSchedule(
            title="plan", equipment=machine, frequency_days=7, next_due_date=NOW.date()
        )
        for machine in machines
    )
    return [place.pk for place in sites + areas]


@pytest.mark.parametrize("locations", [5, 500])
def test_helpers_issue_a_fixed_number_of_queries(
    locations: int, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    ids = populate(locations)
    week = datetime.date(2024, 1, 1)

    with django_assert_num_queries(1):
        by_status = count_by(Equipment.objects.all(), "status")
    with django_assert_num_queries(1):
        nested = count_by(Equipment.objects.all(), "location", "status", keys=ids)
    with django_assert_num_queries(1):
        sites = count_by(Equipment.objects.all(), parent_or_self("location"))
    with django_assert_num_queries(1):
        table = pivot(Equipment.objects.all(), "location", "status", row_keys=ids)
    with django_assert_num_queries(2 if SQLITE else 1):
        late = conditional_counts(
            Activity.objects.all(),
            group_by="equipment__location",
            counts={"overdue": OVERDUE, "due_soon": DUE_SOON},
            keys=ids,
        )
    with django_assert_num_queries(3):
        related = aggregate_by(
            Location.objects.all(),
            {
                "machines": Count("equipment"),
                "events": Count("equipment__calendar_events"),
                "days": Sum("equipment__schedules__frequency_days"),
            },
            group_by="pk",
        )
    with django_assert_num_queries(1):
        weeks = count_by_period(
            Activity.objects.all(), "actual_end", "week", first=week, last=NOW
        )

    assert sum(by_status.values()) == locations
    assert len(nested) == len(table["rows"]) == len(late) == len(related) == locations
    assert sum(sites.values()) == table["total"] == locations
    assert sum(weeks.values()) == 2 * locations
    assert all(
        row == {"machines": 1, "events": 1, "days": 7} for row in related.values()
    )


@pytest.mark.parametrize("locations", [5, 500])
def test_dashboard_figures_issue_a_fixed_number_of_queries(
    locations: int, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    populate(locations)

    # Locations, equipment, activities, events, two charts, two status counts;
    # SQLite splits the equipment and activity figures into one query each.
    with django_assert_num_queries(10 if SQLITE else 8):
        figures = dashboard_figures(NOW)

    # A row per area, and one for each site that has no areas.
    sites, areas = locations - locations // 2, locations // 2
    assert figures["equipment_total"] == locations
    assert len(figures["sites"]) == sites
    assert sum(len(site["rows"]) for site in figures["sites"]) == areas + max(
        sites - areas, 0
    )


# The helpers reproduce the naive dashboard

TOTAL_KEYS = ["equipment", "in_maintenance", "overdue", "due_soon", "open_events"]


def dashboard_figures(now: datetime.datetime) -> dict[str, Any]:
    """Compute the naive dashboard's figures with the helpers."""
    soon = now + datetime.timedelta(days=naive.DUE_SOON_DAYS)
    status = Activity.STATUS
    overdue = Q(status=status.overdue) | Q(
        status__in=[status.scheduled, status.in_progress], scheduled_end__lt=now
    )
    due_soon = Q(
        status=status.scheduled, scheduled_start__gte=now, scheduled_start__lt=soon
    )

    locations = list(Location.objects.values("pk", "name", "parent"))
    ids = [place["pk"] for place in locations]
    machines = conditional_counts(
        Equipment.objects.all(),
        {"equipment": Q(), "in_maintenance": Q(status=Equipment.STATUS.in_maintenance)},
        group_by="location",
        keys=ids,
    )
    work = conditional_counts(
        Activity.objects.all(),
        {"overdue": overdue, "due_soon": due_soon},
        group_by="equipment__location",
        keys=ids,
    )
    events = conditional_counts(
        CalendarEvent.objects.filter(equipment__isnull=False),
        {"open_events": Q(is_completed=False)},
        group_by="equipment__location",
        keys=ids,
    )

    sites = []
    for site in (place for place in locations if place["parent"] is None):
        areas = [place for place in locations if place["parent"] == site["pk"]]
        rows = [
            {
                "id": place["pk"],
                "name": place["name"],
                **machines[place["pk"]],
                **work[place["pk"]],
                **events[place["pk"]],
            }
            for place in areas or [site]
        ]
        totals = {key: sum(row[key] for row in rows) for key in TOTAL_KEYS}
        sites.append(
            {"id": site["pk"], "name": site["name"], "rows": rows, "totals": totals}
        )

    week_starts = naive.week_starts(now)
    completed = count_by_period(
        Activity.objects.filter(status=status.completed),
        "actual_end",
        "week",
        first=week_starts[0],
        last=now,
    )
    scheduled = count_by_period(
        Activity.objects.exclude(status=status.cancelled),
        "scheduled_start",
        "week",
        first=week_starts[0],
        last=now,
    )
    by_status = count_by(Equipment.objects.all(), "status")
    activities = count_by(Activity.objects.all(), "status")
    return {
        "equipment_total": sum(by_status.values()),
        "equipment_by_status": [
            {"status": value, "label": label, "count": by_status[value]}
            for value, label in Equipment.STATUS
        ],
        "sites": sites,
        "activities_by_status": [
            {"status": value, "label": label, "count": activities[value]}
            for value, label in Activity.STATUS
        ],
        "weeks": [
            {
                "start": start,
                "completed": completed[start],
                "scheduled": scheduled[start],
            }
            for start in completed
        ],
    }


def naive_figures(now: datetime.datetime) -> dict[str, Any]:
    full = naive.compute_dashboard(now)
    return {key: full[key] for key in dashboard_figures(now)}


# Property-based: every helper equals a plain Python count over the same rows


@dataclass
class World:
    """Rows created for one example, as plain tuples for Python to count."""

    sites: list[int]
    parents: dict[int, int | None]
    equipment: list[tuple[int, int, str]]  # pk, location, status
    activities: list[MaintenanceActivity]
    events: list[tuple[int | None, bool]]  # equipment, is_completed
    schedules: list[tuple[int, int]]  # equipment, frequency_days

    def location_of(self, machine: int) -> int:
        return next(place for pk, place, _ in self.equipment if pk == machine)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    areas = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3))
    places = len(areas) + sum(areas)
    machines = draw(
        st.lists(
            st.tuples(st.integers(0, places - 1), st.sampled_from(EQUIPMENT_STATUSES)),
            min_size=1,
            max_size=8,
        )
    )
    hours = st.integers(-24 * 90, 24 * 90)
    work = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(machines) - 1),
                st.sampled_from(ACTIVITY_STATUSES),
                hours,
                st.one_of(st.none(), hours),
            ),
            max_size=15,
        )
    )
    events = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.integers(0, len(machines) - 1)), st.booleans()
            ),
            max_size=6,
        )
    )
    schedules = draw(
        st.lists(
            st.tuples(st.integers(0, len(machines) - 1), st.integers(1, 60)), max_size=6
        )
    )
    return {
        "areas": areas,
        "machines": machines,
        "work": work,
        "events": events,
        "schedules": schedules,
    }


def build(spec: dict[str, Any]) -> World:
    sites = [location() for _ in spec["areas"]]
    places = list(sites)
    for site, count in zip(sites, spec["areas"], strict=True):
        places += [location(parent=site) for _ in range(count)]
    machines = [equipment(places[place], status) for place, status in spec["machines"]]
    hour = datetime.timedelta(hours=1)
    activities = [
        activity(
            machines[machine],
            status,
            start=NOW + offset * hour,
            actual_end=None if end is None else NOW + end * hour,
        )
        for machine, status, offset, end in spec["work"]
    ]
    for machine, is_completed in spec["events"]:
        event(None if machine is None else machines[machine], is_completed)
    for machine, days in spec["schedules"]:
        schedule(machines[machine], days)
    return World(
        sites=[site.pk for site in sites],
        parents={place.pk: place.parent_id for place in places},
        equipment=[(m.pk, m.location_id, m.status) for m in machines],
        activities=activities,
        events=[
            (None if machine is None else machines[machine].pk, done)
            for machine, done in spec["events"]
        ],
        schedules=[(machines[machine].pk, days) for machine, days in spec["schedules"]],
    )


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """Undo the rows one example creates, so the next starts from none."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


PROPERTY = settings(max_examples=25, deadline=None, database=None)


def is_overdue(work: MaintenanceActivity) -> bool:
    status = Activity.STATUS
    if work.status == status.overdue:
        return True
    return work.status in {status.scheduled, status.in_progress} and (
        work.scheduled_end < NOW
    )


def is_due_soon(work: MaintenanceActivity) -> bool:
    return (
        work.status == Activity.STATUS.scheduled and NOW <= work.scheduled_start < SOON
    )


def local_period(moment: datetime.datetime, period: str) -> datetime.date:
    day = timezone.localtime(moment).date()
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


@PROPERTY
@given(spec=worlds())
def test_count_by_equals_python_counts(spec: dict[str, Any]) -> None:
    with rolled_back():
        world = build(spec)
        by_status = count_by(Equipment.objects.all(), "status")
        nested = count_by(Equipment.objects.all(), "location", "status")
        sites = count_by(Equipment.objects.all(), parent_or_self("location"))
        work = count_by(Activity.objects.all(), "equipment__location", "status")

    statuses = Counter(status for _, _, status in world.equipment)
    assert by_status == {status: statuses[status] for status in EQUIPMENT_STATUSES}
    pairs = Counter((place, status) for _, place, status in world.equipment)
    assert nested == {
        place: {status: pairs[place, status] for status in EQUIPMENT_STATUSES}
        for place, _ in pairs
    }
    assert sites == Counter(
        world.parents[place] or place for _, place, _ in world.equipment
    )
    places = Counter(
        (world.location_of(a.equipment_id), a.status) for a in world.activities
    )
    assert work == {
        place: {status: places[place, status] for status in ACTIVITY_STATUSES}
        for place, _ in places
    }


@PROPERTY
@given(spec=worlds(), combined=st.sampled_from([None, True, False]))
def test_conditional_counts_equal_python_counts(
    spec: dict[str, Any], combined: bool | None
) -> None:
    with rolled_back():
        world = build(spec)
        counts = conditional_counts(
            Activity.objects.all(),
            group_by="equipment__location",
            counts={"overdue": OVERDUE, "due_soon": DUE_SOON, "all": Q()},
            keys=list(world.parents),
            combined=combined,
        )
        open_work = conditional_counts(
            Activity.objects.all(),
            {"overdue": OVERDUE, "due_soon": DUE_SOON},
            prefilter=Q(status__in=Activity.OPEN_STATUSES),
            combined=combined,
        )

    expected = {
        place: {"overdue": 0, "due_soon": 0, "all": 0} for place in world.parents
    }
    for work in world.activities:
        figures = expected[world.location_of(work.equipment_id)]
        figures["overdue"] += is_overdue(work)
        figures["due_soon"] += is_due_soon(work)
        figures["all"] += 1
    assert counts == expected
    assert open_work == {
        "overdue": sum(is_overdue(work) for work in world.activities),
        "due_soon": sum(is_due_soon(work) for work in world.activities),
    }


@PROPERTY
@given(spec=worlds(), combined=st.sampled_from([None, True, False]))
def test_aggregate_by_equals_python_sums(
    spec: dict[str, Any], combined: bool | None
) -> None:
    with rolled_back():
        world = build(spec)
        figures = aggregate_by(
            Location.objects.all(),
            {
                "machines": Count("equipment"),
                "in_maintenance": Count(
                    "equipment", filter=Q(equipment__status="in_maintenance")
                ),
                "open_events": Count(
                    "equipment__calendar_events",
                    filter=Q(equipment__calendar_events__is_completed=False),
                ),
                "days": Sum("equipment__schedules__frequency_days", default=0),
            },
            group_by="pk",
            combined=combined,
        )

    expected = {
        place: {"machines": 0, "in_maintenance": 0, "open_events": 0, "days": 0}
        for place in world.parents
    }
    for _, place, status in world.equipment:
        expected[place]["machines"] += 1
        expected[place]["in_maintenance"] += status == "in_maintenance"
    for machine, is_completed in world.events:
        if machine is not None and not is_completed:
            expected[world.location_of(machine)]["open_events"] += 1
    for machine, days in world.schedules:
        expected[world.location_of(machine)]["days"] += days
    assert figures == expected


@PROPERTY
@given(spec=worlds())
def test_pivot_equals_python_counts(spec: dict[str, Any]) -> None:
    with rolled_back():
        world = build(spec)
        table = pivot(
            Equipment.objects.all(),
            parent_or_self("location"),
            "status",
            row_keys=world.sites,
        )

    cells = Counter(
        (world.parents[place] or place, status) for _, place, status in world.equipment
    )
    assert table["rows"] == {
        site: {status: cells[site, status] for status in EQUIPMENT_STATUSES}
        for site in world.sites
    }
    assert table["row_totals"] == {
        site: sum(cells[site, status] for status in EQUIPMENT_STATUSES)
        for site in world.sites
    }
    assert table["column_totals"] == {
        status: sum(cells[site, status] for site in world.sites)
        for status in EQUIPMENT_STATUSES
    }
    assert table["total"] == len(world.equipment)


@PROPERTY
@given(
    spec=worlds(),
    zone=st.sampled_from(ZONES),
    period=st.sampled_from(["day", "week", "month"]),
    field=st.sampled_from(["scheduled_start", "actual_end"]),
)
def test_count_by_period_equals_python_counts(
    spec: dict[str, Any], zone: str, period: Any, field: str
) -> None:
    first = datetime.date(2024, 2, 1)
    last = datetime.date(2024, 4, 15)
    with rolled_back(), timezone.override(zoneinfo.ZoneInfo(zone)):
        world = build(spec)
        everything = count_by_period(Activity.objects.all(), field, period, fill=False)
        bounded = count_by_period(
            Activity.objects.all(), field, period, first=first, last=last
        )

        moments = [getattr(work, field) for work in world.activities]
        found = Counter(
            local_period(moment, period) for moment in moments if moment is not None
        )
        days = (
            first + datetime.timedelta(days=n) for n in range((last - first).days + 1)
        )
        periods = dict.fromkeys(
            local_period(
                datetime.datetime.combine(
                    day, datetime.time(12), zoneinfo.ZoneInfo(zone)
                ),
                period,
            )
            for day in days
        )

    assert everything == dict(sorted(found.items()))
    assert bounded == {start: found[start] for start in periods}


@PROPERTY
@given(spec=worlds(), zone=st.sampled_from(ZONES))
def test_helpers_reproduce_the_naive_dashboard(spec: dict[str, Any], zone: str) -> None:
    with rolled_back(), timezone.override(zoneinfo.ZoneInfo(zone)):
        build(spec)
        assert dashboard_figures(NOW) == naive_figures(NOW)
