from __future__ import annotations

import pickle
import random
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import caches
from django.core.cache.backends.base import memcache_key_warnings
from django.db import transaction
from django.http import HttpRequest
from django.template import Context, Engine
from django.test import RequestFactory, override_settings
from django.views.generic import TemplateView

from equipment.models import Equipment
from maintenance_perf.cache import (
    CacheResult,
    counters,
    entry_key,
    get_or_compute,
    invalidate,
    version_key,
)
from maintenance_perf.views import CachedDashboardMixin, cache_scope_for, cached_context
from tests import factories

if TYPE_CHECKING:
    from django.test import Client
    from pytest_django.fixtures import DjangoAssertNumQueries

VALID_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,250}$")


def total_on_page(client: Client, path: str = "/") -> int:
    html = client.get(path).content.decode()
    match = re.search(r'data-status="total">(\d+)<', html)
    assert match, html[:500]
    return int(match.group(1))


def cache_status(client: Client) -> str:
    """Load the dashboard and return what its footer says (with DEBUG on)."""
    html = client.get("/").content.decode()
    match = re.search(r'<span id="cache-status">cache (\w+)</span>', html)
    assert match, html[-500:]
    return match.group(1)


# --- the example dashboard ---------------------------------------------------


@pytest.mark.django_db
def test_dashboard_warm_load_issues_no_query(
    client: Client, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    factories.equipment(factories.location())
    client.get("/")

    with django_assert_num_queries(0):
        response = client.get("/")

    assert counters.get("dashboard.views.DashboardView")["hits"] == 1
    assert re.search(r'data-status="total">1<', response.content.decode())


@pytest.mark.django_db
def test_example_dashboard_page_hit_is_the_rendered_page(
    client: Client, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    factories.equipment(factories.location())
    rendered = client.get("/").content

    with django_assert_num_queries(0):
        served = client.get("/").content

    assert served == rendered
    assert counters.get("dashboard.views.DashboardView")["hits"] == 1


@pytest.mark.django_db
def test_dashboard_warm_load_for_a_user_queries_only_the_session(
    client: Client, django_assert_num_queries: DjangoAssertNumQueries, settings: Any
) -> None:
    settings.DEBUG = True
    user = User.objects.create_user("planner", password="x" * 12)
    client.force_login(user)
    client.get("/")

    # The session and the user: the authentication middleware's own reads.
    with django_assert_num_queries(2):
        assert cache_status(client) == "hit"


@pytest.mark.django_db
def test_dashboard_footer_says_hit_or_miss_with_debug(
    client: Client, settings: Any
) -> None:
    settings.DEBUG = True

    first = client.get("/").content.decode()
    second = client.get("/").content.decode()

    assert '<span id="cache-status">cache miss</span>' in first
    assert '<span id="cache-status">cache hit</span>' in second


@pytest.mark.django_db(transaction=True)
def test_dashboard_save_shows_on_next_load(client: Client) -> None:
    area = factories.location()
    factories.equipment(area)
    assert total_on_page(client) == 1

    factories.equipment(area)

    assert total_on_page(client) == 2


@pytest.mark.django_db(transaction=True)
def test_dashboard_delete_shows_on_next_load(client: Client) -> None:
    area = factories.location()
    pump = factories.equipment(area)
    factories.equipment(area)
    assert total_on_page(client) == 2

    pump.delete()

    assert total_on_page(client) == 1


@pytest.mark.django_db(transaction=True)
def test_dashboard_update_shows_after_invalidate(client: Client) -> None:
    factories.equipment(factories.location())
    page = client.get("/").content.decode()
    assert 'data-status="retired">0<' in page

    Equipment.objects.update(status="retired")
    stale = client.get("/").content.decode()
    invalidate(Equipment)
    fresh = client.get("/").content.decode()

    # update() sends no signal: the page stays cached until invalidate().
    assert 'data-status="retired">0<' in stale
    assert 'data-status="retired">1<' in fresh


@pytest.mark.django_db(transaction=True)
def test_dashboard_bulk_create_shows_after_invalidate_by_role(client: Client) -> None:
    area = factories.location()
    assert total_on_page(client) == 0

    Equipment.objects.bulk_create(
        [Equipment(name=f"P{n}", code=f"P{n}", location=area) for n in range(3)]
    )
    invalidate("equipment")

    assert total_on_page(client) == 3


@pytest.mark.django_db(transaction=True)
def test_dashboard_save_without_tracked_change_keeps_the_entry(client: Client) -> None:
    pump = factories.equipment(factories.location())
    client.get("/")
    version = caches["default"].get(version_key("equipment.Equipment"))

    pump.save()
    unchanged = caches["default"].get(version_key("equipment.Equipment"))
    pump.status = "retired"
    pump.save()
    changed = caches["default"].get(version_key("equipment.Equipment"))

    assert unchanged == version
    assert changed == version + 1


@pytest.mark.django_db(transaction=True)
def test_dashboard_write_to_unwatched_model_keeps_the_entry(
    client: Client, settings: Any
) -> None:
    settings.DEBUG = True
    client.get("/")

    User.objects.create_user("someone")

    assert cache_status(client) == "hit"


@pytest.mark.django_db(transaction=True)
def test_dashboard_write_bumps_version_only_after_commit() -> None:
    area = factories.location()
    key = version_key("equipment.Equipment")
    before = get_or_compute("d", None, ["equipment"], lambda: "old")

    with transaction.atomic():
        factories.equipment(area)
        factories.equipment(area)
        # A request computing now sees the data from before the commit; it
        # caches it under the version still in force.
        during = get_or_compute("d", None, ["equipment"], lambda: "pre-commit")
        version_during = caches["default"].get(key)
    after = get_or_compute("d", None, ["equipment"], lambda: "post-commit")

    assert (before.status, during.status, during.data) == ("miss", "hit", "old")
    assert caches["default"].get(key) == version_during + 1  # one bump, two saves
    assert (after.status, after.data) == ("miss", "post-commit")


@pytest.mark.django_db(transaction=True)
def test_dashboard_rolled_back_write_keeps_the_entry() -> None:

    area = factories.location()
    get_or_compute("d", None, ["equipment"], lambda: "data")

    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012
        factories.equipment(area)
        raise RuntimeError

    assert get_or_compute("d", None, ["equipment"], lambda: "new").status == "hit"


@pytest.mark.django_db(transaction=True)
def test_dashboard_concurrent_recompute_during_open_write_leaves_no_stale_entry(
    client: Client,
) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite locks the table for the other connection's read")
    area = factories.location()
    factories.equipment(area)
    assert total_on_page(client) == 1
    seen: list[int] = []

    with transaction.atomic():
        factories.equipment(area)
        invalidate("equipment")
        # Another connection recomputes while the write is still open.
        other = threading.Thread(target=lambda: seen.append(total_on_page(client)))
        other.start()
        other.join()

    assert seen == [1]
    assert total_on_page(client) == 2


# --- scopes and keys --------------------------------------------------------


class LocationsView(CachedDashboardMixin, TemplateView):
    """Counts equipment in the locations a user may see."""

    watch_models = ["equipment", "location"]
    cache_query_params = ["status"]
    visible: dict[int, list[int]] = {}

    def get_cache_scope(self) -> tuple[int, ...]:
        return tuple(sorted(self.visible[self.request.user.pk]))

    def get_dashboard_data(self) -> dict[str, Any]:
        queryset = Equipment.objects.filter(location__in=self.get_cache_scope())
        if status := self.request.GET.get("status"):
            queryset = queryset.filter(status=status)
        return {"count": queryset.count()}

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        self.seen = context
        return context


def call(view: type[LocationsView], user: Any, query: str = "") -> dict[str, Any]:
    request = RequestFactory().get(f"/?{query}")
    request.user = user
    result: dict[str, Any] = view.as_view()(request)
    return result


@pytest.mark.django_db
def test_dashboard_scopes_never_leak_between_users() -> None:
    rng = random.Random(7)
    areas = [factories.location() for _ in range(6)]
    for area in areas:
        for _ in range(rng.randint(0, 4)):
            factories.equipment(area)
    users = [User.objects.create_user(f"user {n}") for n in range(20)]
    LocationsView.visible = {
        user.pk: [area.pk for area in rng.sample(areas, rng.randint(1, 3))]
        for user in users
    }

    pages = {}
    for _ in range(2):
        for user in rng.sample(users, len(users)):
            pages[user.pk, _] = call(LocationsView, user)

    for user in users:
        expected = Equipment.objects.filter(
            location__in=LocationsView.visible[user.pk]
        ).count()
        assert pages[user.pk, 0]["count"] == expected
        assert pages[user.pk, 1]["count"] == expected
        assert pages[user.pk, 1]["dashboard_cache"].status == "hit"


@pytest.mark.django_db
def test_dashboard_users_with_the_same_scope_share_one_entry() -> None:
    area = factories.location()
    first, second = (User.objects.create_user(name) for name in ("a", "b"))
    LocationsView.visible = {first.pk: [area.pk], second.pk: [area.pk]}

    call(LocationsView, first)

    assert call(LocationsView, second)["dashboard_cache"].status == "hit"


@pytest.mark.django_db
def test_dashboard_staff_and_users_never_share_unless_the_view_says_so() -> None:
    area = factories.location()
    user = User.objects.create_user("user")
    staff = User.objects.create_user("staff", is_staff=True)
    LocationsView.visible = {user.pk: [area.pk], staff.pk: [area.pk]}

    call(LocationsView, user)
    separate = call(LocationsView, staff)["dashboard_cache"].status

    class SharedView(LocationsView):
        cache_share_across_user_kinds = True

    call(SharedView, user)
    shared = call(SharedView, staff)["dashboard_cache"].status

    assert (separate, shared) == ("miss", "hit")


def test_dashboard_anonymous_and_authenticated_never_share() -> None:
    request = HttpRequest()
    request.user = AnonymousUser()
    anonymous = cache_scope_for(request, None, (), False)
    request.user = User(pk=1, username="x")

    assert cache_scope_for(request, None, (), False) != anonymous


@pytest.mark.django_db
def test_dashboard_only_declared_query_params_change_the_entry() -> None:
    area = factories.location()
    factories.equipment(area, "retired")
    user = User.objects.create_user("u")
    LocationsView.visible = {user.pk: [area.pk]}

    call(LocationsView, user, "page=1")
    ignored = call(LocationsView, user, "page=2&utm=x")
    declared = call(LocationsView, user, "status=operational")

    assert ignored["dashboard_cache"].status == "hit"
    assert ignored["count"] == 1
    assert (declared["dashboard_cache"].status, declared["count"]) == ("miss", 0)


def test_dashboard_key_valid_for_spaces_and_long_query_strings() -> None:
    request = RequestFactory().get("/?" + "status=" + "x" * 1993)
    request.user = User(pk=3, username="Jane Q. Public \t Ops")
    assert len(request.META["QUERY_STRING"]) == 2000

    scope = cache_scope_for(
        request, ("user", 3, request.user.username), ["status"], False
    )
    key = entry_key("dashboard with spaces " * 20, scope)

    assert VALID_KEY.match(key)
    assert list(memcache_key_warnings(key)) == []
    assert list(memcache_key_warnings(f"{key}:lock")) == []


# --- stampede protection ------------------------------------------------------


def test_dashboard_concurrent_cold_requests_compute_once() -> None:
    calls = []

    def compute() -> dict[str, int]:
        calls.append(1)
        time.sleep(0.3)
        return {"answer": 42}

    results: list[CacheResult] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(get_or_compute("cold", None, [], compute))
        )
        for _ in range(50)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1
    assert len(results) == 50
    assert {result.data["answer"] for result in results} == {42}
    assert counters.get("cold")["recomputes"] == 1


def test_dashboard_stale_value_served_while_another_recomputes() -> None:
    get_or_compute("d", None, ["equipment"], lambda: "old")
    invalidate("equipment")
    lock = f"{entry_key('d', None)}:lock"
    caches["default"].add(lock, "someone else", 30)

    result = get_or_compute("d", None, ["equipment"], lambda: "new")

    assert (result.status, result.data) == ("stale", "old")
    assert caches["default"].get(lock) == "someone else"


@override_settings(MAINTENANCE_PERF={"STAMPEDE_WAIT": 0.2})
def test_dashboard_lock_of_a_dead_owner_only_delays() -> None:
    lock = f"{entry_key('d', None)}:lock"
    caches["default"].add(lock, "crashed worker", 30)

    result = get_or_compute("d", None, [], lambda: "computed anyway")

    assert (result.status, result.data) == ("miss", "computed anyway")
    # Never release a lock someone else holds; it expires on its own.
    assert caches["default"].get(lock) == "crashed worker"


def test_dashboard_lock_expires() -> None:
    with override_settings(MAINTENANCE_PERF={"LOCK_TIMEOUT": 1}):
        lock = f"{entry_key('d', None)}:lock"
        assert caches["default"].add(lock, "token", 1)
        time.sleep(1.1)

        assert caches["default"].add(lock, "next", 1)


def test_dashboard_timeouts_are_jittered() -> None:
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": 1000}):
        before = time.time()
        for n in range(30):
            get_or_compute(f"d{n}", None, [], lambda: "data")
        cache = caches["default"]
        fresh = [
            cache.get(entry_key(f"d{n}", None)).fresh_until - before for n in range(30)
        ]

    assert all(899 <= value <= 1001 for value in fresh)
    assert len({round(value) for value in fresh}) > 10


def test_dashboard_entry_expires_after_timeout() -> None:
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": 1}):
        get_or_compute("d", None, [], lambda: "first")
        time.sleep(1.05)

        result = get_or_compute("d", None, [], lambda: "second")

    assert (result.status, result.data) == ("miss", "second")


def test_dashboard_zero_timeout_never_caches() -> None:
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": 0}):
        first = get_or_compute("d", None, [], lambda: 1)
        second = get_or_compute("d", None, [], lambda: 2)

    assert (first.status, second.status, second.data) == ("bypass", "bypass", 2)


def test_dashboard_counters() -> None:
    get_or_compute("board", None, [], lambda: 1)
    get_or_compute("board", None, [], lambda: 1)
    get_or_compute("board", None, [], lambda: 1)

    assert counters.get("board") == {
        "hits": 2,
        "misses": 1,
        "stale": 0,
        "recomputes": 1,
        "errors": 0,
    }
    assert counters.all() == {"board": counters.get("board")}


def test_dashboard_result_is_picklable_plain_data() -> None:
    result = get_or_compute("d", None, [], lambda: {"rows": [1, 2]})

    assert pickle.loads(pickle.dumps(result)) == result


# --- function views -----------------------------------------------------------


@pytest.mark.django_db
def test_cached_context_decorator_caches_per_user() -> None:
    calls: list[str] = []

    @cached_context(watch=["equipment"])
    def data(request: HttpRequest) -> dict[str, int]:
        calls.append(request.user.username)
        return {"equipment": Equipment.objects.count()}

    alice, bob = (User.objects.create_user(name) for name in ("alice", "bob"))
    requests = []
    for user in (alice, alice, bob):
        request = RequestFactory().get("/")
        request.user = user
        requests.append(data(request))

    assert [result.status for result in requests] == ["miss", "hit", "miss"]
    assert calls == ["alice", "bob"]


def test_cached_dashboard_mixin_without_data_method() -> None:
    class Incomplete(CachedDashboardMixin, TemplateView):
        template_name = "x.html"

    request = RequestFactory().get("/")
    request.user = AnonymousUser()

    with pytest.raises(NotImplementedError, match="Incomplete must define"):
        Incomplete.as_view()(request)


# --- cached template sections ----------------------------------------------------


SECTION = (
    '{{% load maintenance_perf %}}{{% cached_section "t" %}}{}{{% endcached_section %}}'
)


def render(source: str, context: dict[str, Any]) -> str:
    engine = Engine(
        loaders=[("django.template.loaders.locmem.Loader", {"page.html": source})],
        libraries={
            "maintenance_perf": "maintenance_perf.templatetags.maintenance_perf"
        },
    )
    return engine.get_template("page.html").render(Context(context))


def test_cached_section_warm_render_reuses_the_html() -> None:
    source = SECTION.format("{{ n }}")
    result = get_or_compute("d", None, [], lambda: 1)

    first = render(source, {"dashboard_cache": result, "n": 1})
    second = render(source, {"dashboard_cache": result, "n": 2})

    assert (first, second) == ("1", "1")


def test_cached_section_new_template_source_gets_a_new_entry() -> None:
    result = get_or_compute("d", None, [], lambda: 1)
    tag = '{% load maintenance_perf %}{% cached_section "t" %}'

    render(
        tag + "old {{ n }}{% endcached_section %}", {"dashboard_cache": result, "n": 1}
    )
    html = render(
        tag + "new {{ n }}{% endcached_section %}", {"dashboard_cache": result, "n": 2}
    )

    assert html == "new 2"


def test_cached_section_renders_plainly_without_a_cache_result() -> None:
    source = SECTION.format("{{ n }}")

    assert render(source, {"n": 1}) + render(source, {"n": 2}) == "12"


def test_cached_section_needs_a_name() -> None:
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="exactly one argument"):
        render(
            "{% load maintenance_perf %}{% cached_section %}{% endcached_section %}", {}
        )


@pytest.mark.django_db(transaction=True)
def test_cached_section_follows_the_cache_version(client: Client) -> None:
    area = factories.location("Hall")
    factories.equipment(area)
    client.get("/")

    factories.equipment(area)
    html = client.get("/").content.decode()

    assert re.search(
        rf'<tr data-location="{area.pk}"><td>Hall</td><td class="num">2<', html
    )


# --- model references and signals -------------------------------------------------


def test_resolve_label_accepts_classes_labels_and_roles() -> None:
    from maintenance_perf.cache import resolve_label

    assert resolve_label(Equipment) == "equipment.Equipment"
    assert resolve_label("maintenance.maintenanceactivity") == (
        "maintenance.MaintenanceActivity"
    )
    assert resolve_label("event") == "events.CalendarEvent"
    with (
        override_settings(MAINTENANCE_PERF={"MODELS": {"schedule": None}}),
        pytest.raises(LookupError, match="'schedule' role is mapped to None"),
    ):
        resolve_label("schedule")
    with pytest.raises(LookupError):
        resolve_label("equipment.Machine")


@pytest.mark.django_db(transaction=True)
def test_dashboard_m2m_change_of_a_watched_model_invalidates() -> None:
    from django.contrib.auth.models import Group

    user = User.objects.create_user("ops")
    group = Group.objects.create(name="planners")
    with override_settings(MAINTENANCE_PERF={"WATCH": ["auth.User"]}):
        get_or_compute("d", None, ["auth.User"], lambda: "before")
        user.groups.add(group)

        result = get_or_compute("d", None, ["auth.User"], lambda: "after")

    assert (result.status, result.data) == ("miss", "after")


def test_user_kind_tells_superusers_apart() -> None:
    from maintenance_perf.views import user_kind

    request = HttpRequest()
    request.user = User(pk=1, is_staff=True, is_superuser=True)
    superuser = user_kind(request)
    request.user = User(pk=1, is_staff=True)

    assert (superuser, user_kind(request)) == ("superuser", "staff")


def test_release_never_deletes_a_lock_someone_else_took() -> None:
    from maintenance_perf.cache import _release

    cache = caches["default"]
    cache.set("lock", "theirs", 30)
    _release(cache, "lock", "mine")
    kept = cache.get("lock")
    _release(cache, "lock", "theirs")

    assert (kept, cache.get("lock")) == ("theirs", None)


@pytest.mark.django_db(transaction=True)
def test_dashboard_m2m_change_of_unwatched_models_keeps_the_entry() -> None:
    from django.contrib.auth.models import Group

    user = User.objects.create_user("ops")
    group = Group.objects.create(name="planners")
    get_or_compute("d", None, ["equipment"], lambda: "before")

    user.groups.add(group)

    assert get_or_compute("d", None, ["equipment"], lambda: "after").status == "hit"


def test_dashboard_receivers_leave_other_models_fast_deletable() -> None:
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Group
    from django.db.models.signals import post_delete, post_save

    from events.models import CalendarEvent

    assert post_delete.has_listeners(CalendarEvent)
    assert post_save.has_listeners(Equipment)
    # A user's groups decide what a cached page that reads the user shows.
    assert post_delete.has_listeners(Group)
    # Django deletes a model without listeners in one DELETE, without loading rows.
    assert not post_delete.has_listeners(LogEntry)
    with override_settings(MAINTENANCE_PERF={"WATCH": ["admin.LogEntry"]}):
        assert post_delete.has_listeners(LogEntry)
    assert not post_delete.has_listeners(LogEntry)


def test_invalidate_with_nothing_named_touches_no_key() -> None:
    get_or_compute("d", None, ["equipment"], lambda: "data")
    keys = [version_key("*"), version_key("equipment.Equipment")]
    before = caches["default"].get_many(keys)

    invalidate()

    assert caches["default"].get_many(keys) == before
    assert get_or_compute("d", None, ["equipment"], lambda: "new").status == "hit"
