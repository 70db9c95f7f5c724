from __future__ import annotations

from typing import Any

from django.conf import settings
from django.views.generic import TemplateView

from dashboard import fast, naive
from maintenance_perf.views import CachedDashboardMixin


class NaiveDashboardView(TemplateView):
    """The dashboard as a typical maintenance site computes it: one query per figure."""

    template_name = "dashboard/dashboard.html"
    variant = "naive"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(naive.compute_dashboard())
        context["variant"] = self.variant
        return context


class DashboardView(CachedDashboardMixin, TemplateView):
    """The main dashboard: bulk aggregates, cached for every user of one kind."""

    template_name = "dashboard/dashboard.html"
    watch_models = ["location", "equipment", "activity", "event"]
    # The page shows nothing per user, so it is cached whole (the cache
    # status in the footer stays live).
    cache_rendered_page = True

    def get_dashboard_data(self) -> dict[str, Any]:
        return fast.compute_dashboard()

    def get_cache_scope(self) -> None:
        # Every user of this site sees every location.
        return None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["variant"] = "main"
        context["show_cache_status"] = settings.DEBUG
        return context
