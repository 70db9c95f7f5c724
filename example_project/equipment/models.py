from __future__ import annotations

from django.db import models
from model_utils import Choices, FieldTracker
from model_utils.fields import StatusField
from model_utils.models import TimeStampedModel


class Equipment(TimeStampedModel):
    """A machine or asset that is maintained at a location."""

    STATUS = Choices(
        ("operational", "Operational"),
        ("in_maintenance", "In maintenance"),
        ("out_of_service", "Out of service"),
        ("retired", "Retired"),
    )

    name = models.CharField(max_length=200)
    code = models.CharField(max_length=50, unique=True)
    location = models.ForeignKey(
        "core.Location", on_delete=models.PROTECT, related_name="equipment"
    )
    status = StatusField()
    category = models.CharField(
        max_length=100, blank=True, help_text="Model or category of the machine."
    )
    commissioned_on = models.DateField(null=True, blank=True)

    tracker = FieldTracker(fields=["status", "location"])

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "equipment"

    def __str__(self) -> str:
        return self.name
