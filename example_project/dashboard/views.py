from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from dashboard import naive


class NaiveDashboardView(TemplateView):
    """The dashboard as a typical maintenance site computes it: one query per figure."""

    template_name = "dashboard/dashboard.html"
    variant = "naive"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(naive.compute_dashboard())
        context["variant"] = self.variant
        return context


class DashboardView(NaiveDashboardView):
    """The main dashboard."""

    variant = "main"
