from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from maintenance.models import MaintenanceActivity
from maintenance_perf.locks import TaskLock
from tests.task_helpers import schedules

HAS_BEAT = apps.is_installed("django_celery_beat")
needs_beat = pytest.mark.skipif(
    not HAS_BEAT,
    reason="django-celery-beat is not installed (it has no release for Django 6.1)",
)


def run(*args: Any, **options: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


# --- maintenance_perf_run_task ----------------------------------------------


@pytest.mark.django_db
def test_run_task_command_runs_every_task() -> None:
    schedules(2, timezone.localdate())

    output = run("maintenance_perf_run_task", "--all").splitlines()

    assert output[0].startswith(
        "Task generate-scheduled-maintenance: 2 schedules due, 2 activities created"
    )
    assert output[1].startswith("Task check-overdue-maintenance: nothing to do")
    assert output[2].startswith(
        "Task generate-maintenance-events: 2 calendar events created"
    )


@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={
        "BEAT": {"generate-scheduled-maintenance": {"kwargs": {"advance_days": 30}}}
    }
)
def test_run_task_command_takes_arguments_from_settings_and_options() -> None:
    schedules(1, timezone.localdate() + timezone.timedelta(days=20))

    from_options = run(
        "maintenance_perf_run_task", "generate-scheduled-maintenance", advance_days=7
    )
    from_settings = run("maintenance_perf_run_task", "generate-scheduled-maintenance")

    assert "nothing to do" in from_options
    assert "1 schedules due" in from_settings


@pytest.mark.django_db
def test_run_task_command_runs_a_task_named_twice_once() -> None:
    output = run(
        "maintenance_perf_run_task",
        "generate-maintenance-events",
        "check-overdue-maintenance",
        "generate-maintenance-events",
    ).splitlines()

    assert [line.split(":")[0] for line in output] == [
        "Task generate-maintenance-events",
        "Task check-overdue-maintenance",
    ]


@pytest.mark.django_db
def test_run_task_command_says_when_it_skipped() -> None:
    holder = TaskLock("check-overdue-maintenance", 60)
    assert holder.acquire()

    skipped = run("maintenance_perf_run_task", "check-overdue-maintenance")
    forced = run("maintenance_perf_run_task", "check-overdue-maintenance", no_lock=True)
    holder.release()

    assert "skipped: another run holds its lock" in skipped
    assert "nothing to do" in forced


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((), {}, "name one or more tasks, or --all"),
        (("tidy-up",), {}, "(not tidy-up)"),
        (("check-overdue-maintenance",), {"days_ahead": 3}, "--days-ahead applies"),
    ],
)
def test_run_task_command_rejects_bad_arguments(
    args: tuple[str, ...], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run("maintenance_perf_run_task", *args, **options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--advance-days", "100000000"],
            "--advance-days must be a whole number from 0 to 36500, not 100000000",
        ),
        (["--advance-days", "-1"], "--advance-days must be a whole number from 0"),
        (["--days-ahead", "0"], "--days-ahead must be a whole number from 1 to 36500"),
        (["--batch-size", "0"], "--batch-size must be a whole number 1 or more, not 0"),
    ],
)
def test_run_task_command_rejects_a_flag_out_of_range(
    args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=f"^{re.escape(message)}"):
        run("maintenance_perf_run_task", "--all", *args)


@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={
        "BEAT": {"generate-maintenance-events": {"kwargs": {"batch_size": 0}}}
    }
)
def test_run_task_command_reports_a_bad_value_from_settings() -> None:
    with pytest.raises(CommandError, match="batch_size 1 or more, not 14 and 0"):
        run("maintenance_perf_run_task", "generate-maintenance-events")


@pytest.mark.django_db
def test_run_task_command_creates_nothing_on_a_rerun() -> None:
    schedules(3, timezone.localdate())

    run("maintenance_perf_run_task", "generate-scheduled-maintenance")
    run("maintenance_perf_run_task", "generate-scheduled-maintenance")

    assert MaintenanceActivity.objects.count() == 3


# --- maintenance_perf_sync_beat ---------------------------------------------


@override_settings(
    MAINTENANCE_PERF={"BEAT": {"check-overdue-maintenance": {"schedule": 0}}}
)
def test_sync_beat_refuses_settings_with_mistakes() -> None:
    with pytest.raises(CommandError, match=r"maintenance_perf\.E032"):
        run("maintenance_perf_sync_beat")


def test_sync_beat_without_django_celery_beat() -> None:
    with (
        override_settings(
            INSTALLED_APPS=[app for app in _installed() if app != "django_celery_beat"]
        ),
        pytest.raises(CommandError, match="django-celery-beat is not installed"),
    ):
        run("maintenance_perf_sync_beat")


def _installed() -> list[str]:
    return [config.name for config in apps.get_app_configs()]


@needs_beat
@pytest.mark.django_db
def test_sync_beat_writes_the_schedule_and_a_rerun_changes_nothing() -> None:
    from django_celery_beat.models import PeriodicTask

    first = run("maintenance_perf_sync_beat")
    second = run("maintenance_perf_sync_beat")

    tasks = {task.name: task for task in PeriodicTask.objects.all()}
    assert set(tasks) == {
        "generate-scheduled-maintenance",
        "check-overdue-maintenance",
        "generate-maintenance-events",
    }
    overdue = tasks["check-overdue-maintenance"]
    assert (overdue.task, overdue.interval.every, overdue.interval.period) == (
        "maintenance_perf.check_overdue_maintenance",
        4 * 3600,
        "seconds",
    )
    assert overdue.enabled
    assert "check-overdue-maintenance: created, every 14400 s" in first
    assert second.count("unchanged") == 3


@needs_beat
@pytest.mark.django_db
def test_sync_beat_follows_changed_settings() -> None:
    from django_celery_beat.models import PeriodicTask

    run("maintenance_perf_sync_beat")
    beat = {
        "generate-scheduled-maintenance": {
            "schedule": "30 */3 * * *",
            "options": {"queue": "maintenance", "expires": 600, "priority": 5},
            "kwargs": {"advance_days": 14},
        },
        "check-overdue-maintenance": {"enabled": False},
        "generate-maintenance-events": {"schedule": "3h"},
    }
    with override_settings(MAINTENANCE_PERF={"BEAT": beat}):
        output = run("maintenance_perf_sync_beat")
        again = run("maintenance_perf_sync_beat")

    tasks = {task.name: task for task in PeriodicTask.objects.all()}
    generate = tasks["generate-scheduled-maintenance"]
    assert generate.interval is None
    assert (generate.crontab.minute, generate.crontab.hour) == ("30", "*/3")
    assert (generate.queue, generate.expire_seconds, generate.priority) == (
        "maintenance",
        600,
        5,
    )
    assert json.loads(generate.kwargs) == {"advance_days": 14}
    assert not tasks["check-overdue-maintenance"].enabled
    assert tasks["generate-maintenance-events"].interval.every == 3 * 3600
    assert "generate-scheduled-maintenance: updated, crontab 30 */3 * * *" in output
    assert "check-overdue-maintenance: disabled\n" in output
    assert "check-overdue-maintenance: disabled, unchanged" in again


@needs_beat
@pytest.mark.django_db(transaction=True)
def test_sync_beat_before_migrate_says_to_migrate() -> None:
    call_command("migrate", "django_celery_beat", "zero", verbosity=0)
    try:
        with pytest.raises(CommandError, match=r"run manage\.py migrate first"):
            run("maintenance_perf_sync_beat")
    finally:
        call_command("migrate", "django_celery_beat", verbosity=0)


@needs_beat
@pytest.mark.django_db
def test_sync_beat_dry_run_changes_nothing() -> None:
    from django_celery_beat.models import PeriodicTask

    output = run("maintenance_perf_sync_beat", dry_run=True)

    assert "created, every 7200 s (dry run)" in output
    assert not PeriodicTask.objects.exists()


@needs_beat
@pytest.mark.django_db
@override_settings(
    MAINTENANCE_PERF={"BEAT": {"check-overdue-maintenance": {"schedule": 3600.5}}}
)
def test_sync_beat_refuses_fractions_of_a_second() -> None:
    with pytest.raises(CommandError, match=r"stores whole seconds, not 3600\.5"):
        run("maintenance_perf_sync_beat")


@needs_beat
@pytest.mark.django_db
def test_sync_beat_reuses_existing_schedules() -> None:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule

    beat = {"generate-scheduled-maintenance": {"schedule": "0 3 * * *"}}
    with override_settings(MAINTENANCE_PERF={"BEAT": beat}):
        run("maintenance_perf_sync_beat")
    run("maintenance_perf_sync_beat")
    with override_settings(MAINTENANCE_PERF={"BEAT": beat}):
        output = run("maintenance_perf_sync_beat")

    assert CrontabSchedule.objects.count() == 1
    # Two tasks every 2 hours share one interval; the overdue check has its own.
    assert IntervalSchedule.objects.count() == 2
    assert "generate-scheduled-maintenance: updated, crontab 0 3 * * *" in output
