from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

import pytest
from celery.schedules import crontab
from django.test import override_settings

from maintenance_perf.checks import check_settings
from maintenance_perf.conf import conf
from maintenance_perf.schedule import (
    ScheduleError,
    beat_schedule,
    crontab_fields,
    parse_interval,
    parse_schedule,
)

if TYPE_CHECKING:
    from django.core import checks

HOURS = datetime.timedelta(hours=1)


def ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def beat_messages(beat: Any) -> list[checks.CheckMessage]:
    with override_settings(MAINTENANCE_PERF={"BEAT": beat}):
        return check_settings()


# --- beat_schedule ----------------------------------------------------------


def test_beat_schedule_defaults_run_every_two_and_four_hours() -> None:
    schedule = beat_schedule()

    assert {name: entry["schedule"] for name, entry in schedule.items()} == {
        "generate-scheduled-maintenance": 2 * HOURS,
        "check-overdue-maintenance": 4 * HOURS,
        "generate-maintenance-events": 2 * HOURS,
    }
    assert schedule["check-overdue-maintenance"] == {
        "task": "maintenance_perf.check_overdue_maintenance",
        "schedule": 4 * HOURS,
        "options": {},
        "kwargs": {},
    }


@override_settings(
    MAINTENANCE_PERF={
        "BEAT": {
            "generate-scheduled-maintenance": {
                "schedule": "0 */3 * * 1-5",
                "options": {"queue": "maintenance", "expires": 600},
                "kwargs": {"advance_days": 14},
            },
            "check-overdue-maintenance": {"enabled": False},
            "generate-maintenance-events": {"schedule": 5400},
        }
    }
)
def test_beat_schedule_follows_settings() -> None:
    schedule = beat_schedule()

    generate = schedule["generate-scheduled-maintenance"]
    assert isinstance(generate["schedule"], crontab)
    assert crontab_fields(generate["schedule"]) == {
        "minute": "0",
        "hour": "*/3",
        "day_of_month": "*",
        "month_of_year": "*",
        "day_of_week": "1-5",
    }
    assert generate["options"] == {"queue": "maintenance", "expires": 600}
    assert generate["kwargs"] == {"advance_days": 14}
    assert "check-overdue-maintenance" not in schedule
    assert schedule["generate-maintenance-events"]["schedule"] == 1.5 * HOURS


def test_beat_schedule_from_a_settings_dict_needs_no_django_settings() -> None:
    schedule = beat_schedule(
        {"BEAT": {"check-overdue-maintenance": {"schedule": "1d"}}}
    )

    assert schedule["check-overdue-maintenance"]["schedule"] == 24 * HOURS
    assert schedule["generate-scheduled-maintenance"]["schedule"] == 2 * HOURS


def test_beat_schedule_bad_value_keeps_the_default_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = {
        "BEAT": {
            "check-overdue-maintenance": {
                "schedule": "61 * * * *",
                "options": "fast",
                "kwargs": None,
            }
        }
    }

    with caplog.at_level(logging.WARNING, "maintenance_perf.schedule"):
        entry = beat_schedule(settings)["check-overdue-maintenance"]

    assert (entry["schedule"], entry["options"], entry["kwargs"]) == (4 * HOURS, {}, {})
    assert "runs on its default schedule, '4h'" in caplog.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7200, 2 * HOURS),
        (90.5, datetime.timedelta(seconds=90.5)),
        (datetime.timedelta(minutes=45), datetime.timedelta(minutes=45)),
        ("2h", 2 * HOURS),
        ("1h30m", 1.5 * HOURS),
        (" 1d 2h ", 26 * HOURS),
        ("45s", datetime.timedelta(seconds=45)),
        ("20m", datetime.timedelta(minutes=20)),
    ],
)
def test_parse_schedule_intervals(value: Any, expected: datetime.timedelta) -> None:
    assert parse_schedule(value) == expected


def test_parse_schedule_crontabs() -> None:
    given = crontab(minute="15", hour="3")

    assert parse_schedule(given) is given
    assert crontab_fields(parse_schedule({"minute": 0, "hour": "*/4"})) == {
        "minute": "0",
        "hour": "*/4",
        "day_of_month": "*",
        "month_of_year": "*",
        "day_of_week": "*",
    }


@pytest.mark.parametrize(
    ("value", "is_crontab"),
    [
        (0, False),
        (-60, False),
        ("0h", False),
        (datetime.timedelta(0), False),
        (True, False),
        ("soon", False),
        (None, False),
        ("60 * * * *", True),
        ("* * * * funday", True),
        ({"minute": "*/0"}, True),
        ({"minutes": "5"}, True),
    ],
)
def test_parse_schedule_rejects(value: Any, is_crontab: bool) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(value)

    assert raised.value.crontab is is_crontab


def test_parse_interval_rejects_other_strings() -> None:
    assert parse_interval("") is None
    assert parse_interval("2 hours") is None


# --- checks -----------------------------------------------------------------


def test_check_beat_default_passes() -> None:
    assert beat_messages({}) == []


@pytest.mark.parametrize(
    ("beat", "expected", "text"),
    [
        (["2h"], ["maintenance_perf.E030"], "must be a dict"),
        ({"generate-scheduled-maintenence": {}}, ["maintenance_perf.E030"], ""),
        ({"check-overdue-maintenance": "4h"}, ["maintenance_perf.E030"], "not str"),
        (
            {"check-overdue-maintenance": {"every": "4h"}},
            ["maintenance_perf.E031"],
            "unknown key 'every'",
        ),
        (
            {"check-overdue-maintenance": {"schedule": 0}},
            ["maintenance_perf.E032"],
            "not positive",
        ),
        (
            {"check-overdue-maintenance": {"schedule": "-1h"}},
            ["maintenance_perf.E032"],
            "neither an interval",
        ),
        (
            {"check-overdue-maintenance": {"schedule": 10**20}},
            ["maintenance_perf.E032"],
            "out of range",
        ),
        (
            {"check-overdue-maintenance": {"schedule": "999999999999h"}},
            ["maintenance_perf.E032"],
            "out of range",
        ),
        (
            {"check-overdue-maintenance": {"schedule": float("nan")}},
            ["maintenance_perf.E032"],
            "out of range",
        ),
        (
            {"check-overdue-maintenance": {"schedule": float("inf")}},
            ["maintenance_perf.E032"],
            "out of range",
        ),
        (
            {"check-overdue-maintenance": {"schedule": "0 25 * * *"}},
            ["maintenance_perf.E033"],
            "malformed crontab '0 25 * * *'",
        ),
        (
            {"check-overdue-maintenance": {"schedule": "0 3 * *"}},
            ["maintenance_perf.E033"],
            "malformed crontab '0 3 * *': it has 4 fields, not 5",
        ),
        (
            {"check-overdue-maintenance": {"schedule": "0 3 * * mon-fri 1"}},
            ["maintenance_perf.E033"],
            "it has 6 fields, not 5",
        ),
        (
            {"check-overdue-maintenance": {"schedule": "2 hours"}},
            ["maintenance_perf.E032"],
            "neither an interval",
        ),
        (
            {"check-overdue-maintenance": {"enabled": "no"}},
            ["maintenance_perf.E034"],
            "True or False",
        ),
        (
            {"check-overdue-maintenance": {"lock_timeout": 0}},
            ["maintenance_perf.E036"],
            "lock_timeout",
        ),
    ],
)
def test_check_beat_errors(beat: Any, expected: list[str], text: str) -> None:
    messages = beat_messages(beat)

    assert ids(messages) == expected
    assert text in messages[0].msg


@pytest.mark.parametrize(
    "schedule", ["0 25 * * *", "0 3 * * xyz", "0 3 * *", {"minute": "61"}]
)
def test_check_beat_malformed_crontab_ends_with_one_full_stop(schedule: Any) -> None:
    (message,) = beat_messages({"check-overdue-maintenance": {"schedule": schedule}})

    assert message.id == "maintenance_perf.E033"
    assert message.msg.endswith(".")
    assert not message.msg.endswith("..")


def test_check_beat_unknown_task_suggests_the_right_one() -> None:
    messages = beat_messages({"generate-scheduled-maintenence": {}})

    assert "Did you mean 'generate-scheduled-maintenance'?" in messages[0].hint


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({"options": ["queue"]}, "must be a dict, not list"),
        ({"options": {"queue": 1}}, "['queue'] is 1"),
        ({"options": {"expires": 0}}, "['expires'] is 0"),
        ({"options": {"priority": -1}}, "['priority'] is -1"),
        ({"options": {"priority": True}}, "['priority'] is True"),
        ({"options": {"quuee": "x"}}, "unknown option 'quuee'"),
        ({"kwargs": []}, "must be a dict, not list"),
        ({"kwargs": {"advance_days": -1}}, "from 0 to 36500, not -1"),
        ({"kwargs": {"advance_days": 10**8}}, "from 0 to 36500, not 100000000"),
        ({"kwargs": {"batch_size": 0}}, "1 or more, not 0"),
        ({"kwargs": {"advance_days": "7"}}, "not '7'"),
        ({"kwargs": {"days_ahead": 7}}, "'days_ahead' the task does not take"),
    ],
)
def test_check_beat_bad_options_and_kwargs(entry: dict[str, Any], text: str) -> None:
    messages = beat_messages({"generate-scheduled-maintenance": entry})

    assert ids(messages) == ["maintenance_perf.E035"]
    assert text in messages[0].msg


def test_check_beat_kwargs_of_a_task_without_arguments() -> None:
    messages = beat_messages({"check-overdue-maintenance": {"kwargs": {"x": 1}}})

    assert messages[0].hint == "The task takes no arguments."


def test_check_beat_good_options_pass() -> None:
    entry = {
        "schedule": "3h",
        "options": {"queue": "q", "priority": 0, "expires": 1.5, "routing_key": "r"},
        "kwargs": {"advance_days": 0, "batch_size": 500},
        "lock_timeout": 60,
    }

    assert beat_messages({"generate-scheduled-maintenance": entry}) == []


@pytest.mark.parametrize("schedule", [60, "14m59s", datetime.timedelta(minutes=5)])
def test_check_beat_warns_about_short_intervals(schedule: Any) -> None:
    messages = beat_messages({"check-overdue-maintenance": {"schedule": schedule}})

    assert ids(messages) == ["maintenance_perf.W030"]


@pytest.mark.parametrize("schedule", [86400, "1d", datetime.timedelta(days=7)])
def test_check_beat_warns_about_daily_intervals(schedule: Any) -> None:
    messages = beat_messages({"check-overdue-maintenance": {"schedule": schedule}})

    assert ids(messages) == ["maintenance_perf.W031"]
    assert "restarts its countdown whenever beat restarts" in messages[0].msg


@pytest.mark.parametrize("schedule", ["15m", "25h", "0 3 * * *"])
def test_check_beat_other_schedules_pass(schedule: Any) -> None:
    assert beat_messages({"check-overdue-maintenance": {"schedule": schedule}}) == []


def test_beat_schedule_ignores_a_malformed_beat_value() -> None:
    assert beat_schedule({"BEAT": ["2h"]}) == beat_schedule()


@override_settings(
    MAINTENANCE_PERF={
        "FIELDS": {
            "activity": {"status": "state", "scheduled_end": 5, "colour": "x"},
            "schedule": "next_due_date",
        }
    }
)
def test_conf_fields_merge_names_and_ignore_malformed_ones() -> None:
    fields = conf.fields

    assert fields["activity"]["status"] == "state"
    assert fields["activity"]["scheduled_end"] == "scheduled_end"
    assert "colour" not in fields["activity"]
    assert fields["schedule"]["next_due_date"] == "next_due_date"
