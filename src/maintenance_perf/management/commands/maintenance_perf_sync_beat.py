"""``manage.py maintenance_perf_sync_beat``: write the beat schedule to the DB.

For projects whose beat runs django-celery-beat's ``DatabaseScheduler``,
which reads periodic tasks from its tables instead of ``beat_schedule``.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.apps import apps
from django.core import checks
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, router, transaction
from django.db.migrations.executor import MigrationExecutor

from maintenance_perf.conf import conf
from maintenance_perf.schedule import (
    TASKS,
    check_beat_settings,
    crontab_fields,
    parse_schedule,
)

#: Fields of a periodic task that the command owns; others are left alone.
OWNED = (
    "task",
    "interval_id",
    "crontab_id",
    "kwargs",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "expire_seconds",
    "enabled",
)


class Command(BaseCommand):
    help = (
        "Write the maintenance tasks' beat schedule from MAINTENANCE_PERF['BEAT'] "
        "into django-celery-beat's periodic tasks: create or update an enabled "
        "entry per task, and disable the tasks the settings disable. Rerunning "
        "changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would change, and change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        errors = [
            message
            for message in check_beat_settings(conf.user_settings)
            if message.level >= checks.ERROR
        ]
        if errors:
            raise CommandError(
                "MAINTENANCE_PERF['BEAT'] has mistakes; nothing was written:\n"
                + "\n".join(f"{message.id}: {message.msg}" for message in errors)
            )
        if not apps.is_installed("django_celery_beat"):
            raise CommandError(
                "django-celery-beat is not installed: pip install "
                "'django-maintenance-perf[beat]' and add 'django_celery_beat' to "
                "INSTALLED_APPS"
            )

        self._write(options["dry_run"])  # pragma: django-celery-beat only

    # django-celery-beat has no release for Django 6.1 yet, so the Django 6.1
    # test environments cannot run what follows; the others do.
    def _write(self, dry_run: bool) -> None:  # pragma: django-celery-beat only
        using = router.db_for_write(_beat_model("PeriodicTask"))
        if _unapplied_migrations(using):
            raise CommandError(
                f"django-celery-beat's tables in database {using!r} are missing or "
                "out of date: run manage.py migrate first"
            )

        with transaction.atomic(using=using):
            for name, entry in conf.beat.items():
                outcome = self._sync(name, entry, dry_run)
                self.stdout.write(f"{name}: {outcome}")
            if dry_run:
                transaction.set_rollback(True, using=using)

    def _sync(  # pragma: django-celery-beat only
        self, name: str, entry: dict[str, Any], dry_run: bool
    ) -> str:
        periodic_task = _beat_model("PeriodicTask")
        existing = periodic_task.objects.filter(name=name).first()
        if entry["enabled"] is False:
            if existing is None or not existing.enabled:
                return "disabled, unchanged"
            existing.enabled = False
            existing.save()
            return "disabled" + (" (dry run)" if dry_run else "")

        schedule = parse_schedule(entry["schedule"])
        wanted = {
            "task": TASKS[name],
            "interval_id": None,
            "crontab_id": None,
            "kwargs": json.dumps(entry["kwargs"], sort_keys=True),
            **_options(entry["options"]),
            "enabled": True,
        }
        if isinstance(schedule, datetime.timedelta):
            wanted["interval_id"] = _interval(name, schedule).pk
            described = f"every {schedule.total_seconds():g} s"
        else:
            wanted["crontab_id"] = _crontab(schedule).pk
            described = f"crontab {' '.join(crontab_fields(schedule).values())}"

        if existing is None:
            periodic_task.objects.create(
                name=name,
                description="Maintenance task of django-maintenance-perf.",
                **wanted,
            )
            return f"created, {described}" + (" (dry run)" if dry_run else "")
        if all(getattr(existing, key) == value for key, value in wanted.items()):
            return f"unchanged, {described}"
        for key, value in wanted.items():
            setattr(existing, key, value)
        # Saving also tells a running DatabaseScheduler to reload.
        existing.save()
        return f"updated, {described}" + (" (dry run)" if dry_run else "")


def _unapplied_migrations(  # pragma: django-celery-beat only
    using: str,
) -> list[Any]:
    executor = MigrationExecutor(connections[using])
    return executor.migration_plan(
        executor.loader.graph.leaf_nodes("django_celery_beat")
    )


def _beat_model(name: str) -> Any:  # pragma: django-celery-beat only
    return apps.get_model("django_celery_beat", name)


def _options(
    options: dict[str, Any],
) -> dict[str, Any]:  # pragma: django-celery-beat only
    expires = options.get("expires")
    return {
        "queue": options.get("queue"),
        "exchange": options.get("exchange"),
        "routing_key": options.get("routing_key"),
        "priority": options.get("priority"),
        "expire_seconds": None if expires is None else round(expires),
    }


def _interval(  # pragma: django-celery-beat only
    name: str, interval: datetime.timedelta
) -> Any:
    model = _beat_model("IntervalSchedule")
    seconds = interval.total_seconds()
    if seconds != int(seconds):
        raise CommandError(
            f"{name}: django-celery-beat stores whole seconds, not {seconds:g}"
        )
    found = model.objects.filter(every=int(seconds), period=model.SECONDS).first()
    return found or model.objects.create(every=int(seconds), period=model.SECONDS)


def _crontab(schedule: Any) -> Any:  # pragma: django-celery-beat only
    model = _beat_model("CrontabSchedule")
    # django-celery-beat's default zone is CELERY_TIMEZONE, the zone Celery's
    # own scheduler reads crontabs in.
    fields = {
        **crontab_fields(schedule),
        "timezone": model._meta.get_field("timezone").get_default(),
    }
    return model.objects.filter(**fields).first() or model.objects.create(**fields)
