from __future__ import annotations

from django.db import models
from model_utils.models import TimeStampedModel


class Location(TimeStampedModel):
    """A place that holds equipment: a site, or an area inside a site."""

    name = models.CharField(max_length=200)
    code = models.CharField(max_length=50, unique=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="areas",
        help_text="The site this area belongs to; empty for a site.",
    )
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def site(self) -> Location:
        """The top-level location: the parent, or this location itself."""
        return self.parent or self
