from __future__ import annotations

from django.db import models
from model_utils import Choices
from model_utils.models import TimeStampedModel


class CalendarEvent(TimeStampedModel):
    """An entry on the maintenance calendar."""

    EVENT_TYPE = Choices(
        ("maintenance", "Maintenance"),
        ("error", "Error"),
        ("inspection", "Inspection"),
    )

    title = models.CharField(max_length=200)
    event_type = models.CharField(
        max_length=20, choices=EVENT_TYPE, default=EVENT_TYPE.maintenance
    )
    event_date = models.DateTimeField()
    equipment = models.ForeignKey(
        "equipment.Equipment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="calendar_events",
    )
    activity = models.ForeignKey(
        "maintenance.MaintenanceActivity",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="calendar_events",
    )
    is_completed = models.BooleanField(default=False)
    external_ref = models.CharField(max_length=100, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["event_date"]
        constraints = [
            # An activity has one maintenance event on the calendar, however
            # many task runs create it.
            models.UniqueConstraint(
                fields=["activity"],
                condition=models.Q(event_type="maintenance"),
                name="event_unique_maintenance_activity",
            )
        ]

    def __str__(self) -> str:
        return self.title
