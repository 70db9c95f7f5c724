from __future__ import annotations

import datetime
import logging
import random
import threading
import time
import zoneinfo
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.db import NotSupportedError, OperationalError, connection
from django.db.models import Value
from django.test import override_settings
from django.utils import timezone

from events.models import CalendarEvent
from maintenance.models import MaintenanceActivity, MaintenanceSchedule
from maintenance_perf import maintenance
from maintenance_perf.cache import version_key
from maintenance_perf.checks import check_settings
from maintenance_perf.locks import TaskLock, check_lock_cache, lock_key
from maintenance_perf.maintenance import (
    AddDays,
    DaysBetween,
    TaskResult,
    check_overdue_maintenance,
    generate_maintenance_events,
    generate_scheduled_maintenance,
    next_due_after,
    occurrences,
    run_task,
    summary,
)
from tests import factories
from tests.task_helpers import (
    activities_of,
    in_transaction,
    insert_batches,
    require_redis,
    schedules,
    statements,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from django.core import checks

UTC = datetime.timezone.utc
TODAY = datetime.date(2025, 6, 10)
#: Mid-morning of TODAY in UTC, the tests' default time zone.
NOW = datetime.datetime(2025, 6, 10, 9, 30, tzinfo=UTC)
DAY = datetime.timedelta(days=1)
ACTIVITY = "maintenance.MaintenanceActivity"


def at_midnight(day: datetime.date, zone: str = "UTC") -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(), zoneinfo.ZoneInfo(zone))


def ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


# --- generate scheduled maintenance ----------------------------------------


@pytest.mark.django_db
def test_generate_creates_the_next_activity_of_each_due_schedule() -> None:
    due_today, due_soon = schedules(2, TODAY)
    due_soon.next_due_date = TODAY + 3 * DAY
    due_soon.activity_type = "inspection"
    due_soon.save()
    (later,) = schedules(1, TODAY + 8 * DAY)
    (inactive,) = schedules(1, TODAY, is_active=False)
    (broken,) = schedules(1, TODAY, frequency_days=0)

    counts = generate_scheduled_maintenance(now=NOW)

    assert counts == {"schedules": 2, "created": 2, "existing": 0}
    (first,) = activities_of(due_today)
    assert (first.scheduled_start, first.scheduled_end) == (
        at_midnight(TODAY),
        at_midnight(TODAY + DAY),
    )
    assert (first.title, first.equipment_id, first.status) == (
        due_today.title,
        due_today.equipment_id,
        "scheduled",
    )
    assert activities_of(due_soon)[0].activity_type == "inspection"
    assert [activities_of(s) for s in (later, inactive, broken)] == [[], [], []]
    moved = dict(MaintenanceSchedule.objects.values_list("pk", "next_due_date"))
    assert moved[due_today.pk] == TODAY + 30 * DAY
    assert moved[due_soon.pk] == TODAY + 33 * DAY
    assert moved[later.pk] == TODAY + 8 * DAY


@pytest.mark.django_db
def test_generate_rerun_creates_nothing() -> None:
    schedules(3, TODAY)
    generate_scheduled_maintenance(now=NOW)

    again = generate_scheduled_maintenance(now=NOW)

    assert again == {"schedules": 0, "created": 0, "existing": 0}
    assert MaintenanceActivity.objects.count() == 3


@pytest.mark.django_db
def test_generate_fills_the_advance_window_of_a_frequent_schedule() -> None:
    (daily,) = schedules(1, TODAY, frequency_days=2)

    counts = generate_scheduled_maintenance(now=NOW, advance_days=7)

    starts = [a.scheduled_start.date() for a in activities_of(daily)]
    assert starts == [TODAY + n * DAY for n in (0, 2, 4, 6)]
    assert counts["created"] == 4
    daily.refresh_from_db()
    assert daily.next_due_date == TODAY + 8 * DAY


@pytest.mark.django_db
def test_generate_schedule_behind_gets_its_missed_date_once() -> None:
    (behind,) = schedules(1, TODAY - 10 * DAY, frequency_days=3)

    generate_scheduled_maintenance(now=NOW, advance_days=7)

    starts = [a.scheduled_start.date() for a in activities_of(behind)]
    assert starts == [TODAY - 10 * DAY, TODAY + 2 * DAY, TODAY + 5 * DAY]
    behind.refresh_from_db()
    assert behind.next_due_date == TODAY + 8 * DAY


@pytest.mark.django_db
def test_generate_counts_an_existing_activity_and_keeps_it() -> None:
    (schedule,) = schedules(1, TODAY)
    kept = factories.activity(
        schedule.equipment, "in_progress", at_midnight(TODAY), schedule=schedule
    )

    counts = generate_scheduled_maintenance(now=NOW)

    assert counts == {"schedules": 1, "created": 0, "existing": 1}
    assert activities_of(schedule) == [kept]
    schedule.refresh_from_db()
    assert schedule.next_due_date == TODAY + 30 * DAY


@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={"FIELDS": {"schedule": {"advance_days": "frequency_days"}}}
)
def test_generate_uses_each_schedules_own_advance_field() -> None:
    # The frequency doubles as the advance window: a 30-day schedule is due
    # 30 days ahead, a 5-day one only 5 days ahead.
    (monthly,) = schedules(1, TODAY + 20 * DAY, frequency_days=30)
    (weekly,) = schedules(1, TODAY + 6 * DAY, frequency_days=5)

    counts = generate_scheduled_maintenance(now=NOW, advance_days=0)

    assert counts["schedules"] == 1
    assert len(activities_of(monthly)) == 1
    assert activities_of(weekly) == []
    monthly.refresh_from_db()
    assert monthly.next_due_date == TODAY + 50 * DAY


@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={
        "FIELDS": {
            "schedule": {"is_active": None, "title": None},
            "activity": {"activity_type": None},
        }
    }
)
def test_generate_without_optional_fields() -> None:
    (inactive,) = schedules(1, TODAY, is_active=False)

    generate_scheduled_maintenance(now=NOW)

    (created,) = activities_of(inactive)
    assert (created.title, created.activity_type) == ("", "preventive")


@pytest.mark.django_db
@pytest.mark.parametrize(("advance", "batch"), [(-1, 10), (7, 0), (10**8, 10)])
def test_generate_rejects_bad_arguments(advance: int, batch: int) -> None:
    with pytest.raises(ValueError, match="advance_days must be from 0 to 36500"):
        generate_scheduled_maintenance(advance_days=advance, batch_size=batch)


@pytest.mark.django_db
@override_settings(MAINTENANCE_PERF={"MODELS": {"schedule": None}})
def test_generate_needs_a_schedule_model() -> None:
    with pytest.raises(LookupError, match=r"\['MODELS'\]\['schedule'\] is None"):
        generate_scheduled_maintenance()


@pytest.mark.django_db
@override_settings(MAINTENANCE_PERF={"FIELDS": {"schedule": {"next_due_date": None}}})
def test_generate_needs_a_next_due_date_field() -> None:
    with pytest.raises(LookupError, match="the maintenance tasks need it"):
        generate_scheduled_maintenance()


def test_occurrences_examples() -> None:
    assert occurrences(TODAY, 30, TODAY, 7) == ([TODAY], TODAY + 30 * DAY)
    assert occurrences(TODAY + 9 * DAY, 30, TODAY, 7) == ([], TODAY + 39 * DAY)
    assert occurrences(TODAY - 6 * DAY, 3, TODAY, 0) == (
        [TODAY - 6 * DAY, TODAY],
        TODAY + 3 * DAY,
    )


@pytest.mark.django_db
def test_next_due_after_in_sql_matches_occurrences() -> None:
    rng = random.Random(6)
    cases = [(TODAY, 1, 0), (TODAY - 400 * DAY, 7, 0), (TODAY + 7 * DAY, 1, 7)] + [
        (TODAY + rng.randint(-90, 30) * DAY, rng.randint(1, 60), rng.randint(0, 45))
        for _ in range(60)
    ]
    cases = [
        (due, every, window)
        for due, every, window in cases
        if due <= TODAY + window * DAY
    ]
    schedules(1, TODAY)
    expressions = {
        f"case{n}": next_due_after(Value(due), Value(every), TODAY, Value(window))
        for n, (due, every, window) in enumerate(cases)
    }

    row = MaintenanceSchedule.objects.annotate(**expressions).values(*expressions).get()

    assert [row[f"case{n}"] for n in range(len(cases))] == [
        occurrences(due, every, TODAY, window)[1] for due, every, window in cases
    ]


def test_date_arithmetic_is_not_written_for_other_databases() -> None:
    expression = AddDays(Value(TODAY), DaysBetween(Value(TODAY), Value(TODAY)))
    other = mock.Mock(vendor="mysql")

    with pytest.raises(NotSupportedError, match="not mysql"):
        expression.as_sql(mock.Mock(), other)


@pytest.mark.django_db(transaction=True)
def test_generate_invalidates_the_dashboard_only_when_it_wrote() -> None:
    cache = caches["default"]
    schedules(2, TODAY)
    cache.set(version_key(ACTIVITY), 10)

    generate_scheduled_maintenance(now=NOW)
    after_write = cache.get(version_key(ACTIVITY))
    generate_scheduled_maintenance(now=NOW)

    assert after_write == 11
    assert cache.get(version_key(ACTIVITY)) == 11


class SerializationFailure(Exception):
    sqlstate = "40001"


@pytest.mark.django_db
def test_generate_retries_once_after_a_serialization_failure() -> None:
    schedules(1, TODAY)
    conflict = OperationalError("could not serialize access")
    conflict.__cause__ = SerializationFailure()
    real = maintenance._generate
    calls = []

    def conflicting_once(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise conflict
        return real(*args)

    with mock.patch.object(maintenance, "_generate", conflicting_once):
        counts = generate_scheduled_maintenance(now=NOW)

    assert counts["created"] == 1
    assert len(calls) == 2


@pytest.mark.django_db
def test_generate_raises_other_database_errors() -> None:
    with (
        mock.patch.object(maintenance, "_generate", side_effect=OperationalError("x")),
        pytest.raises(OperationalError),
    ):
        generate_scheduled_maintenance(now=NOW)


@pytest.mark.django_db(transaction=True)
def test_generate_concurrent_runs_without_the_lock_create_no_duplicates() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's shared in-memory test database refuses a second writer")
    schedules(50, TODAY)
    real_plan = maintenance._plan_activities
    results: list[Any] = []

    def slow_plan(*args: Any) -> Any:
        # Both runs read the schedules before either one writes.
        time.sleep(0.3)
        return real_plan(*args)

    def run() -> None:
        try:
            results.append(generate_scheduled_maintenance(now=NOW))
        finally:
            connection.close()

    with mock.patch.object(maintenance, "_plan_activities", slow_plan):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(result["created"] for result in results) == [0, 50]
    assert MaintenanceActivity.objects.count() == 50


@pytest.mark.django_db
def test_generate_inside_a_callers_transaction_names_the_schedules_it_moves() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's transactions always see one snapshot")
    schedules(5, TODAY)

    # The test runs inside a transaction, as a caller's code might.
    with mock.patch.object(maintenance, "UPDATE_BATCH_SIZE", 2):
        counts, kinds = statements(lambda: generate_scheduled_maintenance(now=NOW))

    assert counts["created"] == 5
    assert kinds["UPDATE"] == 3
    assert "SET" not in kinds
    assert set(MaintenanceSchedule.objects.values_list("next_due_date", flat=True)) == {
        TODAY + 30 * DAY
    }


# --- check overdue maintenance ----------------------------------------------


@pytest.mark.django_db
def test_check_overdue_marks_scheduled_work_past_its_end() -> None:
    pump = factories.equipment(factories.location())
    late = factories.activity(pump, "scheduled", NOW - 3 * DAY)
    started = factories.activity(pump, "in_progress", NOW - 3 * DAY)
    done = factories.activity(pump, "completed", NOW - 3 * DAY)
    coming = factories.activity(pump, "scheduled", NOW + DAY)

    first = check_overdue_maintenance(now=NOW)
    again = check_overdue_maintenance(now=NOW)

    statuses = dict(MaintenanceActivity.objects.values_list("pk", "status"))
    assert (first, again) == ({"marked": 1}, {"marked": 0})
    assert [statuses[a.pk] for a in (late, started, done, coming)] == [
        "overdue",
        "in_progress",
        "completed",
        "scheduled",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Asia/Tokyo", datetime.date(2025, 6, 10), 24),
        ("America/Los_Angeles", datetime.date(2025, 6, 10), 24),
        ("Europe/Amsterdam", datetime.date(2025, 3, 30), 23),
        ("Europe/Amsterdam", datetime.date(2025, 10, 26), 25),
        ("America/New_York", datetime.date(2025, 3, 9), 23),
    ],
)
def test_check_overdue_turns_at_local_midnight(
    zone: str, day: datetime.date, hours: int
) -> None:
    (schedule,) = schedules(1, day)
    with override_settings(TIME_ZONE=zone):
        # Planned late in the evening before, local time: UTC is already on
        # the due day in Tokyo and still on the day before in Los Angeles.
        generate_scheduled_maintenance(
            now=at_midnight(day, zone) - datetime.timedelta(hours=1)
        )
        (planned,) = activities_of(schedule)
        midnight = at_midnight(day + DAY, zone)

        before = check_overdue_maintenance(now=midnight - datetime.timedelta(seconds=1))
        after = check_overdue_maintenance(now=midnight + datetime.timedelta(seconds=1))

    assert planned.scheduled_start == at_midnight(day, zone)
    assert planned.scheduled_end - planned.scheduled_start == datetime.timedelta(
        hours=hours
    )
    assert (before, after) == ({"marked": 0}, {"marked": 1})


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_end_cutoff_for_a_date_only_end_is_the_local_date(zone: str) -> None:
    midnight = at_midnight(TODAY, zone)

    with override_settings(TIME_ZONE=zone):
        before = maintenance._end_cutoff(
            MaintenanceSchedule,
            "next_due_date",
            midnight - datetime.timedelta(seconds=1),
        )
        after = maintenance._end_cutoff(MaintenanceSchedule, "next_due_date", midnight)

    assert (before, after) == (TODAY - DAY, TODAY)


@pytest.mark.django_db(transaction=True)
def test_check_overdue_invalidates_the_dashboard_only_when_it_wrote() -> None:
    cache = caches["default"]
    factories.activity(
        factories.equipment(factories.location()), "scheduled", NOW - DAY
    )
    cache.set(version_key(ACTIVITY), 10)

    check_overdue_maintenance(now=NOW)
    after_write = cache.get(version_key(ACTIVITY))
    check_overdue_maintenance(now=NOW)

    assert (after_write, cache.get(version_key(ACTIVITY))) == (11, 11)


# --- generate maintenance events --------------------------------------------


@pytest.mark.django_db
def test_generate_events_for_upcoming_activities_without_one() -> None:
    pump = factories.equipment(factories.location())
    soon = factories.activity(pump, "scheduled", NOW + DAY, title="Oil change")
    running = factories.activity(pump, "in_progress", NOW - DAY, hours=48)
    with_error = factories.activity(pump, "scheduled", NOW + 2 * DAY)
    factories.event(NOW, on=pump, event_type="error", activity=with_error)
    planned = factories.activity(pump, "scheduled", NOW + 3 * DAY)
    factories.event(NOW + 3 * DAY, on=pump, activity=planned)
    factories.activity(pump, "scheduled", NOW + 20 * DAY)
    factories.activity(pump, "completed", NOW + DAY)
    factories.activity(pump, "scheduled", NOW - 2 * DAY)

    first = generate_maintenance_events(now=NOW, days_ahead=14)
    again = generate_maintenance_events(now=NOW, days_ahead=14)

    assert (first, again) == ({"created": 3}, {"created": 0})
    created = CalendarEvent.objects.filter(activity__in=[soon, running, with_error])
    assert created.filter(event_type="maintenance").count() == 3
    event = created.get(activity=soon)
    assert (event.title, event.event_date, event.equipment, event.is_completed) == (
        "Oil change",
        soon.scheduled_start,
        pump,
        False,
    )


@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={
        "FIELDS": {
            "event": {"event_type": None, "is_completed": None, "title": None},
            "activity_status": {"in_progress": None},
        }
    }
)
def test_generate_events_without_optional_fields() -> None:
    pump = factories.equipment(factories.location())
    factories.activity(pump, "scheduled", NOW + DAY)
    factories.activity(pump, "in_progress", NOW - DAY, hours=48)
    errored = factories.activity(pump, "scheduled", NOW + DAY)
    factories.event(NOW, on=pump, event_type="error", activity=errored)

    # Without an event type any event counts, and in-progress work is left out.
    assert generate_maintenance_events(now=NOW) == {"created": 1}


@pytest.mark.django_db
@pytest.mark.parametrize(("days", "batch"), [(0, 10), (7, 0), (10**8, 10)])
def test_generate_events_rejects_bad_arguments(days: int, batch: int) -> None:
    with pytest.raises(ValueError, match="days_ahead must be from 1 to 36500"):
        generate_maintenance_events(days_ahead=days, batch_size=batch)


@pytest.mark.django_db(transaction=True)
def test_generate_events_invalidates_the_dashboard_only_when_it_wrote() -> None:
    cache = caches["default"]
    key = version_key("events.CalendarEvent")
    factories.activity(
        factories.equipment(factories.location()), "scheduled", NOW + DAY
    )
    cache.set(key, 10)

    generate_maintenance_events(now=NOW)
    after_write = cache.get(key)
    generate_maintenance_events(now=NOW)

    assert (after_write, cache.get(key)) == (11, 11)


# --- query counts -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [10, 10_000])
def test_task_query_counts_do_not_depend_on_the_number_of_rows(count: int) -> None:
    schedules(count, TODAY)
    batch = maintenance.DEFAULT_BATCH_SIZE

    _, idle = statements(lambda: generate_scheduled_maintenance(now=NOW - 30 * DAY))
    generated, generating = statements(lambda: generate_scheduled_maintenance(now=NOW))
    events, eventing = statements(lambda: generate_maintenance_events(now=NOW))
    marked, marking = statements(lambda: check_overdue_maintenance(now=NOW + 2 * DAY))

    assert generated == {"schedules": count, "created": count, "existing": 0}
    assert (events, marked) == ({"created": count}, {"marked": count})
    assert idle == in_transaction(SELECT=1)
    assert generating == in_transaction(
        SELECT=2, INSERT=insert_batches(MaintenanceActivity, count, batch), UPDATE=1
    )
    assert eventing == in_transaction(
        SELECT=1, INSERT=insert_batches(CalendarEvent, count, batch)
    )
    assert marking == {"UPDATE": 1}


# --- running a task under its lock ------------------------------------------


@pytest.mark.django_db
def test_run_task_logs_one_line_and_returns_the_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedules(2, timezone.localdate())

    with caplog.at_level(logging.INFO, "maintenance_perf"):
        result = run_task("generate-scheduled-maintenance")

    assert result.counts == {"schedules": 2, "created": 2, "existing": 0}
    assert result.changed
    assert result.as_dict()["counts"] == result.counts
    assert [record.getMessage() for record in caplog.records] == [summary(result)]
    assert "2 schedules due, 2 activities created, 0 already there" in caplog.text
    assert caches["default"].get(lock_key("generate-scheduled-maintenance")) is None


@pytest.mark.django_db
def test_run_task_with_nothing_to_do_says_so() -> None:
    result = run_task("check-overdue-maintenance")

    assert (result.counts, result.changed) == ({"marked": 0}, False)
    assert "nothing to do" in summary(result)


@pytest.mark.django_db
def test_run_task_skips_while_another_run_holds_the_lock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedules(1, timezone.localdate())
    holder = TaskLock("generate-scheduled-maintenance", 60)
    assert holder.acquire()

    with caplog.at_level(logging.INFO, "maintenance_perf"):
        skipped = run_task("generate-scheduled-maintenance")
    unlocked = run_task("generate-scheduled-maintenance", lock=False)

    assert skipped.skipped.startswith("another run holds its lock")
    assert (skipped.counts, skipped.changed) == ({}, False)
    assert (
        "skipped: another run holds its lock (it expires within 900 s)" in caplog.text
    )
    assert unlocked.counts["created"] == 1
    assert holder.release()


@pytest.mark.django_db
def test_run_task_skips_when_the_lock_cache_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        mock.patch.object(
            caches["default"].__class__, "add", side_effect=ConnectionError("down")
        ),
        caplog.at_level(logging.WARNING, "maintenance_perf"),
    ):
        result = run_task("check-overdue-maintenance")

    assert result.skipped == "its lock's cache failed (ConnectionError: down)"
    assert "Task check-overdue-maintenance skipped" in caplog.text


@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={"BEAT": {"check-overdue-maintenance": {"lock_timeout": "1m"}}}
)
def test_run_task_bad_lock_timeout_falls_back_to_the_default() -> None:
    with mock.patch.object(maintenance, "TaskLock", wraps=TaskLock) as lock:
        run_task("check-overdue-maintenance")

    assert lock.call_args.args == ("check-overdue-maintenance", 900)


def test_run_task_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task 'tidy-up'"):
        run_task("tidy-up")


def test_summary_of_a_skipped_run() -> None:
    result = TaskResult("check-overdue-maintenance", skipped="just because")

    assert summary(result) == "Task check-overdue-maintenance skipped: just because."


# --- the lock -----------------------------------------------------------------


@pytest.fixture(params=["locmem", "django-redis", "django"])
def lock_cache(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a lock test on a cache with and one without compare-and-delete."""
    backends = {
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "django-redis": {"BACKEND": "django_redis.cache.RedisCache"},
        "django": {"BACKEND": "django.core.cache.backends.redis.RedisCache"},
    }
    backend = backends[request.param]
    if request.param != "locmem":
        backend["LOCATION"] = require_redis()
    with override_settings(
        CACHES={"default": backend},
        MAINTENANCE_PERF={"KEY_PREFIX": f"mperf-lock-test-{random.randrange(10**9)}"},
    ):
        yield request.param
        caches["default"].delete(lock_key("t"))


def test_lock_is_held_by_one_owner_at_a_time(lock_cache: str) -> None:
    first, second = TaskLock("t", 60), TaskLock("t", 60)

    assert first.acquire()
    assert not second.acquire()
    assert not second.release()
    assert first.release()
    assert second.acquire()
    assert second.release()


def test_lock_of_a_dead_owner_expires(lock_cache: str) -> None:
    dead = TaskLock("t", 1)
    assert dead.acquire()
    heir = TaskLock("t", 60)

    blocked = heir.acquire()
    time.sleep(1.1)

    assert (blocked, heir.acquire()) == (False, True)
    assert heir.release()


def test_lock_never_releases_someone_elses_lock(
    lock_cache: str, caplog: pytest.LogCaptureFixture
) -> None:
    slow = TaskLock("t", 60)
    assert slow.acquire()
    # The slow run outlived its lock, which another run then took.
    caches["default"].set(lock_key("t"), "another owner's token", 60)

    with caplog.at_level(logging.WARNING, "maintenance_perf"):
        released = slow.release()

    assert not released
    assert caches["default"].get(lock_key("t")) == "another owner's token"
    assert "ran longer than its lock's 60 s expiry" in caplog.text


def test_lock_release_survives_a_cache_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lock = TaskLock("t", 60)
    assert lock.acquire()

    with (
        mock.patch.object(
            lock, "_delete_if_owned", side_effect=ConnectionError("down")
        ),
        caplog.at_level(logging.WARNING, "maintenance_perf"),
    ):
        released = lock.release()

    assert not released
    assert "could not release its lock (ConnectionError: down)" in caplog.text
    caches["default"].delete(lock.key)


def test_lock_as_a_context_manager_releases_on_exit() -> None:
    with TaskLock("t", 60) as acquired:
        held = caches["default"].get(lock_key("t"))

    assert acquired
    assert held is not None
    assert caches["default"].get(lock_key("t")) is None


def test_check_lock_cache_warns_about_a_per_process_cache() -> None:
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        assert ids(check_lock_cache()) == ["maintenance_perf.W034"]
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache"}}
    ):
        assert check_lock_cache() == []
    with override_settings(MAINTENANCE_PERF={"CACHE_ALIAS": "nowhere"}):
        assert check_lock_cache() == []


# --- checks on FIELDS and the schema ----------------------------------------


def fields_messages(fields: Any) -> list[checks.CheckMessage]:
    with override_settings(MAINTENANCE_PERF={"FIELDS": fields}):
        return check_settings()


def test_check_fields_defaults_pass() -> None:
    assert fields_messages({}) == []


@pytest.mark.parametrize(
    ("fields", "number", "text"),
    [
        (["status"], "E037", "must be a dict, not list"),
        ({"activities": {}}, "E037", "unknown group 'activities'"),
        ({"activity": "status"}, "E037", "['activity'] must be a dict"),
        ({"activity": {"state": "status"}}, "E037", "unknown key 'state'"),
        ({"activity": {"status": 3}}, "E037", "must be a name or None"),
        ({"activity": {"status": None}}, "E038", "need the status field"),
        ({"activity": {"status": "state"}}, "E038", "does not have"),
        ({"schedule": {"next_due_date": "title"}}, "E038", "is a CharField"),
        ({"activity_status": {"overdue": None}}, "E039", "need the overdue value"),
        ({"activity_status": {"overdue": "late"}}, "E039", "'late', which is not"),
        ({"event_type": {"maintenance": "service"}}, "E039", "'service'"),
    ],
)
def test_check_fields_errors(fields: Any, number: str, text: str) -> None:
    messages = fields_messages(fields)

    assert ids(messages) == [f"maintenance_perf.{number}"]
    assert text in messages[0].msg


def test_check_fields_optional_fields_may_be_none() -> None:
    fields = {
        "schedule": {"title": None, "is_active": None},
        "event": {"event_type": None, "equipment": None},
        "activity_status": {"in_progress": None},
    }

    assert fields_messages(fields) == []


@override_settings(MAINTENANCE_PERF={"MODELS": {"activity": "maintenance.Nothing"}})
def test_check_fields_skip_a_model_that_is_not_installed() -> None:
    assert ids(check_settings()) == ["maintenance_perf.E007"]


def test_check_fields_default_field_missing_names_the_default() -> None:
    with override_settings(
        MAINTENANCE_PERF={"MODELS": {"schedule": "maintenance.MaintenanceActivity"}}
    ):
        messages = check_settings()

    assert "maintenance_perf.E038" in ids(messages)
    assert any(
        "The default schedule frequency_days field is 'frequency_days'" in m.msg
        for m in messages
    )


def test_check_constraints_warn_without_unique_constraints() -> None:
    with (
        mock.patch.object(MaintenanceActivity._meta, "constraints", []),
        mock.patch.object(CalendarEvent._meta, "constraints", []),
    ):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.W032", "maintenance_perf.W033"]
    assert "(schedule, scheduled_start)" in messages[0].msg


def test_check_constraints_accept_unique_together() -> None:
    with (
        mock.patch.object(MaintenanceActivity._meta, "constraints", []),
        mock.patch.object(
            MaintenanceActivity._meta,
            "unique_together",
            (("schedule", "scheduled_start"),),
        ),
    ):
        assert check_settings() == []


@override_settings(
    MAINTENANCE_PERF={"FIELDS": {"activity": {"scheduled_start": "start"}}}
)
def test_check_constraints_leave_a_wrong_field_to_the_field_check() -> None:
    assert ids(check_settings()) == ["maintenance_perf.E038"]


@override_settings(MAINTENANCE_PERF={"MODELS": {"activity": None, "event": None}})
def test_check_without_activity_or_event_models() -> None:
    assert check_settings() == []


def test_check_environment_warns_about_other_databases_and_naive_time() -> None:
    with (
        mock.patch.object(connection, "vendor", "mysql"),
        override_settings(USE_TZ=False),
    ):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.W035", "maintenance_perf.W036"]


def test_has_unique_single_field() -> None:
    assert maintenance._has_unique(CalendarEvent, ["external_ref"])
    assert not maintenance._has_unique(CalendarEvent, ["title"])
