"""The whole-page cache: warm loads like cache_page, per-request parts live."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import User
from django.template import Engine
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone, translation

from maintenance_perf.cache import counters
from maintenance_perf.pages import template_identity
from tests import factories, page_views

if TYPE_CHECKING:
    from pathlib import Path


pytestmark = [
    pytest.mark.urls("tests.page_views"),
    pytest.mark.django_db(transaction=True),
]

DASHBOARD = "tests.page_views.PageDashboard"


@pytest.fixture(autouse=True)
def _page_templates() -> Any:
    page_views.PageDashboard.computed = 0
    with override_settings(TEMPLATES=page_views.TEMPLATES):
        yield


def load(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def total(html: str) -> int:
    match = re.search(r"<b>(\d+)</b>", html)
    assert match, html
    return int(match.group(1))


def footer(html: str) -> str:
    match = re.search(r"<footer>cache (\w+)</footer>", html)
    assert match, html
    return match.group(1)


# --- per-request parts -------------------------------------------------------


def token_in_form(html: str) -> str:
    field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert field, html
    return field.group(1)


def token_in(html: str) -> tuple[str, str]:
    field = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    script = re.search(r"const token = '([^']+)'", html)
    assert field, html
    assert script, html
    return field.group(1), script.group(1)


def test_page_csrf_token_is_each_clients_own() -> None:
    factories.equipment(factories.location())
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    load(first, "/form/")

    pages = [load(first, "/form/"), load(second, "/form/"), load(second, "/form/")]

    assert [footer(html) for html in pages] == ["hit", "hit", "hit"]
    assert all("mperfcsrf" not in html for html in pages)
    assert all("mperfstatus" not in html for html in pages)
    assert all(token_in(html)[0] == token_in(html)[1] for html in pages)
    tokens = [token_in(html)[0] for html in pages]
    for client, token in zip((first, second, second), tokens, strict=True):
        response = client.post("/accept/", {"csrfmiddlewaretoken": token})
        assert response.status_code == 200, response.content
    # A token taken from another client's page is refused.
    refused = first.post("/accept/", {"csrfmiddlewaretoken": tokens[1]})
    assert refused.status_code == 403


def test_page_that_reads_the_user_is_kept_per_user() -> None:
    factories.equipment(factories.location())
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    clients = {"alice": Client(), "bob": Client(), "guest": Client()}
    clients["alice"].force_login(alice)
    clients["bob"].force_login(bob)

    pages = {
        (name, round): load(client, "/greeting/")
        for round in range(2)
        for name, client in clients.items()
    }

    for (name, _), html in pages.items():
        assert f"Hello {name}" in html
        assert total(html) == 1
    assert [footer(pages[name, 1]) for name in clients] == ["hit", "hit", "hit"]
    # Users and the anonymous visitor are told apart by their kind; the two
    # users share one data entry.
    assert page_views.PageDashboard.computed == 2


def test_page_that_reads_the_user_follows_their_permissions_and_name() -> None:
    from django.contrib.auth.models import Group, Permission

    factories.equipment(factories.location())
    admins = Group.objects.create(name="admins")
    admins.permissions.add(Permission.objects.get(codename="view_group"))
    alice = User.objects.create_user("alice")
    alice.groups.add(admins)
    client = Client()
    client.force_login(alice)

    granted = [load(client, "/perms/") for _ in range(2)]
    alice.groups.remove(admins)
    revoked = [load(client, "/perms/") for _ in range(2)]
    alice.username = "alice.smith"
    alice.save()
    renamed = load(client, "/perms/")

    assert ["Group admin" in html for html in granted + revoked] == [
        True,
        True,
        False,
        False,
    ]
    # The data did not change: only the page was rendered again.
    assert [footer(html) for html in granted + revoked] == ["miss"] + ["hit"] * 3
    assert "<p>alice.smith</p>" in renamed


def test_page_that_reads_the_request_is_rendered_each_time(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    factories.equipment(factories.location())

    with caplog.at_level(logging.INFO, logger="maintenance_perf.pages"):
        pages = [load(client, f"/query/?q={word}") for word in ("pumps", "valves")]
        load(client, "/query/?q=fans")

    assert "You searched pumps" in pages[0]
    assert "You searched valves" in pages[1]
    assert footer(pages[1]) == "hit"
    assert counters.get(DASHBOARD)["hits"] == 2
    logged = [r.getMessage() for r in caplog.records if "reads" in r.getMessage()]
    assert logged == [
        f"Dashboard {DASHBOARD}: its template reads request, which may differ on "
        "each request, so its page is rendered on each request from now on."
    ]


def test_page_shows_a_pending_message_once(client: Client) -> None:
    factories.equipment(factories.location())
    assert "Work order saved" not in load(client, "/messages/")

    client.get("/save/")
    with_message = load(client, "/messages/")
    after = [load(client, "/messages/") for _ in range(2)]

    assert "<p>Work order saved</p>" in with_message
    assert ["Work order saved" in html for html in after] == [False, False]
    assert footer(after[1]) == "hit"


def test_page_stable_context_value_is_cached_and_others_are_not(
    client: Client,
) -> None:
    factories.equipment(factories.location())

    stable = [load(client, "/site/") for _ in range(2)]
    unstable = [load(client, "/site-unstable/") for _ in range(2)]

    assert all("<h1>North plant</h1>" in html for html in stable + unstable)
    assert counters.get("tests.page_views.SiteDashboard")["hits"] == 1
    # Without the declaration the page is rendered each time, the data is not.
    assert counters.get(DASHBOARD)["hits"] == 1


def test_page_follows_the_data_version(client: Client) -> None:
    area = factories.location()
    factories.equipment(area)
    before = [load(client, "/form/") for _ in range(2)]

    factories.equipment(area)
    after = [load(client, "/form/") for _ in range(2)]

    assert [(total(html), footer(html)) for html in before + after] == [
        (1, "miss"),
        (1, "hit"),
        (2, "miss"),
        (2, "hit"),
    ]


def test_page_markers_are_found_whatever_a_filter_made_of_their_case() -> None:
    factories.equipment(factories.location())
    client = Client(enforce_csrf_checks=True)

    pages = [load(client, "/shouting/") for _ in range(3)]

    assert [footer(html) for html in pages] == ["miss", "hit", "hit"]
    for html in pages:
        assert "mperf" not in html.lower()
        shown = re.search(r"<i>(\w+)</i>", html)
        assert shown, html
        # The filtered copy is filled in as the token is: valid for this client.
        assert shown.group(1) == token_in_form(html)
        response = client.post("/accept/", {"csrfmiddlewaretoken": shown.group(1)})
        assert response.status_code == 200
    assert ["<u>" + footer(html) + "</u>" in html for html in pages] == [True] * 3


def test_page_with_a_cut_csrf_token_is_rendered_each_time(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    factories.equipment(factories.location())

    with caplog.at_level(logging.INFO, logger="maintenance_perf.pages"):
        pages = [load(client, "/sliced/") for _ in range(3)]

    assert [footer(html) for html in pages] == ["miss", "hit", "hit"]
    # The first render shows what the filter made of the marker; every
    # later one is rendered plainly, with the token of its own request.
    assert ["<i>mperfcsrf" in html for html in pages] == [True, False, False]
    logged = [r.getMessage() for r in caplog.records if "filter" in r.getMessage()]
    assert len(logged) == 1


def test_page_is_kept_per_language_and_time_zone(client: Client) -> None:
    factories.equipment(factories.location())
    visits = [
        ("de", "Asia/Tokyo"),
        ("en", "Asia/Tokyo"),
        ("de", "America/New_York"),
        ("de", "Asia/Tokyo"),
    ]

    pages = []
    for language, zone in visits:
        with translation.override(language), timezone.override(zone):
            pages.append(load(client, "/locale/"))

    shown = [re.search(r"<i>(.*?)</i>", html).group(1) for html in pages]  # type: ignore[union-attr]
    assert shown == [f"{language} {zone}" for language, zone in visits]
    assert [footer(html) for html in pages] == ["miss", "miss", "miss", "hit"]
    # Printed without escaping, the status is live all the same.
    assert "<s>hit</s>" in pages[3]


def test_page_is_rendered_when_another_method_calls_get() -> None:
    factories.equipment(factories.location())
    client = Client()
    load(client, "/errors/")
    load(client, "/errors/")

    response = client.put("/errors/")

    assert response.status_code == 200
    assert response.context is not None
    assert counters.get("tests.page_views.FormDashboard")["hits"] == 2


def test_page_render_context_keeps_the_real_cache_status(client: Client) -> None:
    factories.equipment(factories.location())

    response = client.get("/form/")

    assert response.context["dashboard_cache"].status == "miss"
    assert footer(response.content.decode()) == "miss"


def test_page_of_a_changed_base_template_is_not_served(client: Client) -> None:
    factories.equipment(factories.location())
    load(client, "/form/")

    sources = {
        **page_views.SOURCES,
        "base.html": "<h1>New look</h1>" + page_views.SOURCES["base.html"],
    }
    templates = [
        {
            **page_views.TEMPLATES[0],
            "OPTIONS": {
                **page_views.TEMPLATES[0]["OPTIONS"],
                "loaders": [("django.template.loaders.locmem.Loader", sources)],
            },
        }
    ]
    with override_settings(TEMPLATES=templates):
        html = load(client, "/form/")

    assert "<h1>New look</h1>" in html


def test_page_rendered_for_a_post_or_an_error_is_not_stored() -> None:
    factories.equipment(factories.location())
    client = Client()

    posted = client.post("/errors/").content.decode()
    gone = client.get("/errors/?gone=1")
    pages = [load(client, "/errors/") for _ in range(2)]

    assert "Give the work order a title" in posted
    assert gone.status_code == 410
    assert [footer(html) for html in pages] == ["hit", "hit"]
    assert not any("a title" in html or "closed" in html for html in pages)
    assert counters.get("tests.page_views.FormDashboard")["hits"] == 3


def test_page_context_of_the_view_wins_over_the_context_processors() -> None:
    factories.equipment(factories.location())
    clients = [Client(), Client()]
    for client, name in zip(clients, ("alice", "bob"), strict=True):
        client.force_login(User.objects.create_user(name))

    pages = [load(client, "/owner/") for client in clients]

    assert ["Hello owner from the owner view" in html for html in pages] == [
        True,
        True,
    ]
    assert [footer(html) for html in pages] == ["miss", "hit"]


# --- URL arguments -------------------------------------------------------------


def test_dashboard_url_arguments_take_part_in_the_key(client: Client) -> None:
    north, south = factories.location(), factories.location()
    factories.equipment(north)
    for _ in range(3):
        factories.equipment(south)

    pages = [load(client, f"/locations/{area.pk}/") for area in (north, south) * 2]
    functions = [
        int(load(client, f"/function/{area.pk}/")) for area in (north, south) * 2
    ]

    assert [total(html) for html in pages] == [1, 3, 1, 3]
    assert [footer(html) for html in pages] == ["miss", "miss", "hit", "hit"]
    assert functions == [1, 3, 1, 3]


# --- templates -----------------------------------------------------------------


def engine(**sources: str) -> Engine:
    return Engine(loaders=[("django.template.loaders.locmem.Loader", sources)])


def test_template_identity_follows_extended_and_included_templates() -> None:
    child = (
        '{% extends "base.html" %}{% block b %}{% include "row.html" %}{% endblock %}'
    )
    first = engine(
        **{
            "child.html": child,
            "base.html": "A{% block b %}{% endblock %}",
            "row.html": "r",
        }
    )
    new_base = engine(
        **{
            "child.html": child,
            "base.html": "B{% block b %}{% endblock %}",
            "row.html": "r",
        }
    )
    new_row = engine(
        **{
            "child.html": child,
            "base.html": "A{% block b %}{% endblock %}",
            "row.html": "s",
        }
    )

    identities = {
        template_identity(variant.get_template("child.html"))
        for variant in (first, new_base, new_row)
    }

    assert len(identities) == 3


def test_template_identity_of_dynamic_and_recursive_includes() -> None:
    sources = {
        "tree.html": '{% if node %}{% include "tree.html" %}{% endif %}'
        "{% include name %}",
    }

    identity = template_identity(engine(**sources).get_template("tree.html"))

    assert identity is not None
    assert len(identity) == 32


def test_page_of_another_template_engine_is_rendered_each_time(
    client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "location.html").write_text("<b>$total</b>")
    factories.equipment(factories.location())
    area = factories.location()
    strings = [
        {
            "BACKEND": "django.template.backends.dummy.TemplateStrings",
            "DIRS": [tmp_path],
        }
    ]

    with override_settings(TEMPLATES=strings), caplog.at_level(logging.INFO):
        pages = [load(client, f"/locations/{area.pk}/") for _ in range(2)]

    assert pages == ["<b>0</b>", "<b>0</b>"]
    assert counters.get("tests.page_views.LocationDashboard")["hits"] == 1
    assert any("not a Django template" in r.getMessage() for r in caplog.records)


def test_page_without_messages_middleware() -> None:
    factories.equipment(factories.location())
    view = page_views.PageDashboard.as_view(template_name="messages.html")

    pages = [view(RequestFactory().get("/messages/")) for _ in range(2)]
    for response in pages:
        response.render()

    assert [footer(response.content.decode()) for response in pages] == ["miss", "hit"]
