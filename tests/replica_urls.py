"""Views for the read-replica tests: the dashboard, and one that writes first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection
from django.urls import include, path

from core.models import Location
from dashboard.views import DashboardView
from maintenance_perf.routers import use_primary

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


def write_then_dashboard(request: HttpRequest) -> HttpResponse:
    Location.objects.create(name="Written in this request", code="W1")
    return DashboardView.as_view()(request)  # type: ignore[no-any-return]


def raw_write_then_dashboard(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_location SET name = name")
    use_primary()
    return DashboardView.as_view()(request)  # type: ignore[no-any-return]


urlpatterns = [
    path("write/", write_then_dashboard),
    path("raw-write/", raw_write_then_dashboard),
    path("", include("maintenance_dashboard.urls")),
]
