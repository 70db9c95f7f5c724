"""A URLconf whose dashboards watch models the settings do not watch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import TemplateView

from maintenance_perf.views import CachedDashboardMixin, cached_context

if TYPE_CHECKING:
    from django.http import HttpRequest


class GroupDashboard(CachedDashboardMixin, TemplateView):
    watch_models = ["equipment", "admin.LogEntry", "stock.Part"]


@cached_context(watch=["sessions.Session"], name="permissions")
def permission_data(request: HttpRequest) -> dict[str, Any]:
    return {}


def permission_dashboard(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(permission_data(request).data))


urlpatterns = [
    path("groups/", GroupDashboard.as_view()),
    path("permissions/", permission_dashboard),
    path("", include("maintenance_dashboard.urls")),
]
