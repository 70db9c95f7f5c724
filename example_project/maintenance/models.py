from __future__ import annotations

from django.db import models
from model_utils import Choices, FieldTracker
from model_utils.fields import StatusField
from model_utils.models import TimeStampedModel

ACTIVITY_TYPE = Choices(
    ("preventive", "Preventive"),
    ("corrective", "Corrective"),
    ("inspection", "Inspection"),
)


class MaintenanceSchedule(TimeStampedModel):
    """Recurring work on one piece of equipment, every ``frequency_days``."""

    ACTIVITY_TYPE = ACTIVITY_TYPE

    title = models.CharField(max_length=200)
    equipment = models.ForeignKey(
        "equipment.Equipment", on_delete=models.CASCADE, related_name="schedules"
    )
    activity_type = models.CharField(
        max_length=20, choices=ACTIVITY_TYPE, default=ACTIVITY_TYPE.preventive
    )
    frequency_days = models.PositiveIntegerField()
    next_due_date = models.DateField()
    is_active = models.BooleanField(default=True)
    external_ref = models.CharField(max_length=100, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["next_due_date"]

    def __str__(self) -> str:
        return self.title


class MaintenanceActivity(TimeStampedModel):
    """One piece of maintenance work, planned or done."""

    ACTIVITY_TYPE = ACTIVITY_TYPE
    STATUS = Choices(
        ("scheduled", "Scheduled"),
        ("in_progress", "In progress"),
        ("completed", "Completed"),
        ("overdue", "Overdue"),
        ("cancelled", "Cancelled"),
    )
    PRIORITY = Choices(
        (1, "low", "Low"),
        (2, "medium", "Medium"),
        (3, "high", "High"),
        (4, "critical", "Critical"),
    )
    #: Statuses of work that still has to be done.
    OPEN_STATUSES = (STATUS.scheduled, STATUS.in_progress, STATUS.overdue)

    title = models.CharField(max_length=200)
    equipment = models.ForeignKey(
        "equipment.Equipment", on_delete=models.CASCADE, related_name="activities"
    )
    schedule = models.ForeignKey(
        MaintenanceSchedule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="activities",
    )
    activity_type = models.CharField(
        max_length=20, choices=ACTIVITY_TYPE, default=ACTIVITY_TYPE.preventive
    )
    status = StatusField()
    priority = models.PositiveSmallIntegerField(
        choices=PRIORITY, default=PRIORITY.medium
    )
    scheduled_start = models.DateTimeField()
    scheduled_end = models.DateTimeField()
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)
    external_ref = models.CharField(max_length=100, unique=True, null=True, blank=True)

    tracker = FieldTracker(fields=["status", "scheduled_start", "scheduled_end"])

    class Meta:
        ordering = ["-scheduled_start"]
        verbose_name_plural = "maintenance activities"
        constraints = [
            # A schedule's activity for a due date exists once, however many
            # task runs plan it.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_start"],
                name="activity_unique_schedule_start",
            )
        ]

    def __str__(self) -> str:
        return self.title
