"""Small dashboards whose whole page is cached, for the page-cache tests.

Their templates live in a local-memory loader (see ``TEMPLATES``), so a test
can change a template's source the way a deploy would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.generic import TemplateView

from equipment.models import Equipment
from maintenance_perf.views import CachedDashboardMixin, cached_context

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseRedirect

SOURCES = {
    "base.html": "<title>{% block title %}Fleet{% endblock %}</title>"
    "<main>{% block content %}{% endblock %}</main>"
    "<footer>cache {{ dashboard_cache.status }}</footer>",
    "form.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><form>{% csrf_token %}</form>"
    "<script>const token = '{{ csrf_token|escapejs }}';</script>{% endblock %}",
    "shouting.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><i>{{ csrf_token|upper }}</i><form>{% csrf_token %}</form>"
    "<u>{{ dashboard_cache.status|title }}</u>{% endblock %}",
    "perms.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><p>{{ user.username }}</p>"
    "{% if perms.auth.view_group %}<em>Group admin</em>{% endif %}{% endblock %}",
    "sliced.html": '{% extends "base.html" %}{% block content %}'
    '<b>{{ total }}</b><i>{{ csrf_token|slice:":12" }}</i>{% endblock %}',
    "locale.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><i>{{ LANGUAGE_CODE }} {{ TIME_ZONE }}</i>"
    "{% autoescape off %}<s>{{ dashboard_cache.status }}</s>{% endautoescape %}"
    "{% endblock %}",
    "owner.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><p>Hello {{ user.username }} from {{ view.name }}</p>"
    "{% endblock %}",
    "greeting.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><p>Hello {{ user.username|default:'guest' }}</p>"
    "{% endblock %}",
    "query.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><p>You searched {{ request.GET.q }}</p>{% endblock %}",
    "messages.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b>{% for message in messages %}<p>{{ message }}</p>"
    "{% endfor %}{% endblock %}",
    "site.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><h1>{{ site_name }}</h1>{% endblock %}",
    "errors.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b><p>{{ error }}</p>{% endblock %}",
    "location.html": '{% extends "base.html" %}{% block content %}'
    "<b>{{ total }}</b>{% endblock %}",
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [("django.template.loaders.locmem.Loader", SOURCES)],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tests.page_views.site_name",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
            ],
        },
    },
]


def site_name(request: HttpRequest) -> dict[str, str]:
    return {"site_name": "North plant"}


class PageDashboard(CachedDashboardMixin, TemplateView):
    """Counts every piece of equipment; the whole page is cached."""

    watch_models = ["equipment"]
    cache_rendered_page = True
    computed = 0

    def get_cache_scope(self) -> None:
        return None

    def get_dashboard_data(self) -> dict[str, Any]:
        type(self).computed += 1
        return {"total": Equipment.objects.count()}


class LocationDashboard(PageDashboard):
    """Counts the equipment of the location in the URL."""

    template_name = "location.html"

    def get_dashboard_data(self) -> dict[str, Any]:
        return {"total": Equipment.objects.filter(location=self.kwargs["pk"]).count()}


class SiteDashboard(PageDashboard):
    template_name = "site.html"
    cache_page_stable_context = ["site_name"]


class FormDashboard(PageDashboard):
    """A dashboard with a form: a POST renders the page with its errors."""

    template_name = "errors.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(error="Give the work order a title")
        return self.render_to_response(context)

    def put(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Shows the page again after a change, as form views often do.
        return self.get(request, *args, **kwargs)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "gone" in request.GET:
            context = self.get_context_data(error="This site was closed")
            return self.render_to_response(context, status=410)
        return super().get(request, *args, **kwargs)


class OwnerDashboard(PageDashboard):
    """Puts a ``user`` of its own in the context: the site's owner."""

    template_name = "owner.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["user"] = {"username": "owner"}
        context["view"] = {"name": "the owner view"}
        return context


@cached_context(watch=["equipment"], scope=lambda request: None)
def location_data(request: HttpRequest, pk: int) -> dict[str, int]:
    return {"total": Equipment.objects.filter(location=pk).count()}


def location_function_view(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(str(location_data(request, pk).data["total"]))


def save(request: HttpRequest) -> HttpResponseRedirect:
    """Pretend to save a form: say so, then go back to the dashboard."""
    messages.success(request, "Work order saved")
    return redirect("/messages/")


def accept(request: HttpRequest) -> HttpResponse:
    return HttpResponse("accepted")


urlpatterns = [
    path("form/", PageDashboard.as_view(template_name="form.html")),
    path("greeting/", PageDashboard.as_view(template_name="greeting.html")),
    path("shouting/", PageDashboard.as_view(template_name="shouting.html")),
    path("sliced/", PageDashboard.as_view(template_name="sliced.html")),
    path("perms/", PageDashboard.as_view(template_name="perms.html")),
    path("locale/", PageDashboard.as_view(template_name="locale.html")),
    path("query/", PageDashboard.as_view(template_name="query.html")),
    path("messages/", PageDashboard.as_view(template_name="messages.html")),
    path("site/", SiteDashboard.as_view()),
    path("site-unstable/", PageDashboard.as_view(template_name="site.html")),
    path("locations/<int:pk>/", LocationDashboard.as_view()),
    path("function/<int:pk>/", location_function_view),
    path("errors/", FormDashboard.as_view()),
    path("owner/", OwnerDashboard.as_view()),
    path("save/", save),
    path("accept/", accept),
]
