"""Cache a dashboard's computed context, for class-based and function views.

By default only the context data is cached, never the response: the page is
rendered on every request, so CSRF tokens, messages and the user menu stay
live. The data-heavy parts of a template can be cached too, with the
``{% cached_section %}`` tag of the ``maintenance_perf`` template library.
A class-based view can go further and cache its whole rendered page
(``cache_rendered_page``), with the per-request parts still live: see
:mod:`maintenance_perf.pages`.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import select_template
from django.utils import timezone, translation

from maintenance_perf.cache import (
    CacheResult,
    CacheUnavailable,
    ModelRef,
    current_versions,
    get_or_compute,
    get_page,
    page_key,
    set_page,
    user_labels,
)
from maintenance_perf.pages import (
    LiveText,
    Page,
    PageRecorder,
    log_once,
    markers_found,
    template_identity,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from django.http import HttpRequest
    from django.template.response import TemplateResponse

#: The context variable that holds the :class:`~maintenance_perf.cache.CacheResult`.
CONTEXT_NAME = "dashboard_cache"

Data = TypeVar("Data")

#: Each function :func:`cached_context` decorated, with its dashboard name and
#: watched models, so ``optimize_performance`` can check what they watch.
decorated_dashboards: weakref.WeakKeyDictionary[
    Callable[..., CacheResult], tuple[str, tuple[ModelRef, ...]]
] = weakref.WeakKeyDictionary()


def user_kind(request: HttpRequest) -> str:
    """Return which kind of user asks: anonymous, user, staff or superuser."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "anonymous"
    if user.is_superuser:
        return "superuser"
    return "staff" if user.is_staff else "user"


def default_scope(request: HttpRequest) -> Hashable:
    """Scope an entry to the user who asks; anonymous users share one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return ("user", user.pk)


def cache_scope_for(
    request: HttpRequest,
    scope: Hashable,
    query_params: Sequence[str],
    share_across_user_kinds: bool,
    url_arguments: tuple[Any, ...] = (),
) -> tuple[Any, ...]:
    """Return every part of a request that the cached data may depend on.

    Only the query parameters a view declares take part, so any other
    parameter can neither change the data nor grow the cache. The view's URL
    arguments (``/locations/<pk>/``) always take part, and so do the active
    language and time zone: choice labels are translated, and days are
    counted in local time.
    """
    params = tuple((name, request.GET.getlist(name)) for name in sorted(query_params))
    kind = "any" if share_across_user_kinds else user_kind(request)
    locale = (translation.get_language(), timezone.get_current_timezone_name())
    if url_arguments:
        return (kind, scope, params, locale, url_arguments)
    return (kind, scope, params, locale)


def _url_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not args and not kwargs:
        return ()
    return (tuple(args), tuple(sorted(kwargs.items())))


class CachedDashboardMixin:
    """Cache what :meth:`get_dashboard_data` returns, for a class-based view.

    Set ``watch_models`` to the models the data depends on (classes,
    ``"app_label.ModelName"`` labels or ``MAINTENANCE_PERF["MODELS"]`` roles).
    The data is cached per user unless :meth:`get_cache_scope` says
    otherwise, and anonymous users, users, staff and superusers never share
    an entry unless ``cache_share_across_user_kinds`` is set.
    """

    watch_models: ClassVar[Sequence[ModelRef]] = ()
    cache_timeout: ClassVar[int | None] = None
    cache_query_params: ClassVar[Sequence[str]] = ()
    cache_name: ClassVar[str | None] = None
    cache_serve_stale: ClassVar[bool] = True
    cache_share_across_user_kinds: ClassVar[bool] = False
    #: Cache the whole rendered page too (see :mod:`maintenance_perf.pages`).
    #: A warm load then skips ``get_context_data`` and the template: only
    #: what the data, the scope, the URL arguments and the declared query
    #: parameters decide may appear on the page.
    cache_rendered_page: ClassVar[bool] = False
    #: Context processor values that are the same for every request (a site
    #: name, say), which a cached page may therefore contain.
    cache_page_stable_context: ClassVar[Sequence[str]] = ()

    request: HttpRequest
    args: Any
    kwargs: Any

    def get_dashboard_data(self) -> Any:
        """Compute the dashboard's data: plain, picklable values only."""
        raise NotImplementedError(
            f"{type(self).__name__} must define get_dashboard_data()"
        )

    def get_cache_scope(self) -> Hashable:
        """Return what users who share an entry have in common.

        The default is the user. Return, for example, the sorted ids of the
        locations a user may see, so users with the same visibility share.
        """
        return default_scope(self.request)

    def get_cache_name(self) -> str:
        return self.cache_name or f"{type(self).__module__}.{type(self).__qualname__}"

    def get_cache_parts(self) -> tuple[Any, ...]:
        """Return what tells this request's entry apart, once per request."""
        parts: tuple[Any, ...] | None = getattr(self, "_cache_parts", None)
        if parts is None:
            parts = self._cache_parts = cache_scope_for(
                self.request,
                self.get_cache_scope(),
                self.cache_query_params,
                self.cache_share_across_user_kinds,
                _url_arguments(self.args, self.kwargs),
            )
        return parts

    def get_cached_dashboard(self) -> CacheResult:
        """Return the dashboard's data with how it was obtained."""
        return get_or_compute(
            self.get_cache_name(),
            self.get_cache_parts(),
            self.watch_models,
            self.get_dashboard_data,
            timeout=self.cache_timeout,
            serve_stale=self.cache_serve_stale,
            cache_failure=getattr(self, "_cache_failure", None),
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        result = self.get_cached_dashboard()
        context.update(result.data)
        context[CONTEXT_NAME] = result
        return context

    # --- the cached page -----------------------------------------------------

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # A POST handler may call get() to show the page; it gets it rendered.
        if self.cache_rendered_page and request.method in {"GET", "HEAD"}:
            response = self.get_cached_page_response()
            if response is not None:
                return response
        return super().get(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def get_cached_page_response(self) -> HttpResponse | None:
        """Return the cached page for this request, or None to render it."""
        template = self._page_template()
        if template is None:
            return None
        identity, _ = template

        name = self.get_cache_name()
        reads_user = _reads_user(name, identity)
        key = self._page_key(identity, reads_user)
        try:
            page = get_page(
                name, self.get_cache_parts(), self.watch_models, key, reads_user
            )
        except CacheUnavailable as failure:
            self._cache_failure = failure
            return None
        if page is None or (page.shows_messages and _has_messages(self.request)):
            return None
        content = page.serve(lambda: get_token(self.request), "hit")
        return HttpResponse(content, content_type=page.content_type)

    def render_to_response(
        self, context: dict[str, Any], **response_kwargs: Any
    ) -> TemplateResponse:
        render = super().render_to_response  # type: ignore[misc]
        result = context.get(CONTEXT_NAME)
        # A page rendered for a form's POST, say, is no page to serve a GET.
        storable = self.cache_rendered_page and self.request.method in {"GET", "HEAD"}
        template = self._page_template() if storable else None
        if template is None or not isinstance(result, CacheResult) or not result.token:
            return render(context, **response_kwargs)  # type: ignore[no-any-return]

        identity, processors = template
        try:
            # Read before the render reads the user's name and permissions, so
            # a change made meanwhile makes the stored page outdated at once.
            user_versions = current_versions(user_labels())
        except CacheUnavailable:
            return render(context, **response_kwargs)  # type: ignore[no-any-return]
        recorder = PageRecorder()
        watched = recorder.live_context(
            self.request, processors, self.cache_page_stable_context, self
        )
        # What the view put in the context wins over the context processors,
        # as in any render; only its ``view`` entry is watched.
        page_context = {**watched, **context}
        if context.get("view") is self:
            page_context["view"] = watched["view"]
        page_context[CONTEXT_NAME] = dataclasses.replace(
            result,
            status=LiveText(result.status, recorder.status_marker),  # type: ignore[arg-type]
        )
        response: TemplateResponse = render(page_context, **response_kwargs)
        response.add_post_render_callback(
            functools.partial(
                self._store_page, recorder, result, identity, user_versions
            )
        )
        return response

    def _store_page(
        self,
        recorder: PageRecorder,
        result: CacheResult,
        identity: str,
        user_versions: tuple[Any, ...],
        response: HttpResponse,
    ) -> None:
        name = self.get_cache_name()
        content = response.content
        status_marker = recorder.status_marker.encode()
        csrf_marker = recorder.csrf_marker.encode() if recorder.read_csrf else b""
        counts = [markers_found(content, status_marker)]
        csrf_count = markers_found(content, csrf_marker) if csrf_marker else None
        if csrf_count is not None:
            counts.append(csrf_count)
        page = Page(
            token=result.token,
            content=content,
            content_type=response["Content-Type"],
            status_marker=status_marker,
            csrf_marker=csrf_marker,
            shows_messages=recorder.read_messages,
            user_versions=user_versions if recorder.reads_user else (),
            any_case=any(exact != any_case for exact, any_case in counts),
        )
        response.content = page.serve(lambda: get_token(self.request), result.status)
        if response.status_code != 200:
            return

        if csrf_count is not None and csrf_count[1] == 0:
            # A filter such as slice made the marker into text no serve can
            # find again; this response shows what it made of it.
            _render_plainly(name, identity, "changes csrf_token with a filter")
            return
        if recorder.request_names:
            names = ", ".join(sorted(recorder.request_names))
            _render_plainly(
                name, identity, f"reads {names}, which may differ on each request"
            )
            return
        if recorder.read_messages and _has_messages(self.request):
            return
        if recorder.reads_user:
            _user_pages.add((name, identity))
        key = self._page_key(identity, recorder.reads_user)
        set_page(key, page, result.timeout)

    def _page_key(self, identity: str, reads_user: bool) -> str:
        user: Any = None
        if reads_user:
            # Anonymous users share one page; they never share it with a user.
            account = getattr(self.request, "user", None)
            if account is not None and account.is_authenticated:
                user = ("user", account.pk)
            else:
                user = "anonymous"
        return page_key(self.get_cache_name(), self.get_cache_parts(), identity, user)

    def _page_template(
        self,
    ) -> tuple[str, Sequence[Callable[[HttpRequest], dict[str, Any]]]] | None:
        """Return the page template's identity and context processors.

        Looked up once per request: a page missed while serving is looked up
        again while rendering.
        """
        if not hasattr(self, "_page_template_found"):
            self._page_template_found = self._find_page_template()
        return self._page_template_found

    def _find_page_template(
        self,
    ) -> tuple[str, Sequence[Callable[[HttpRequest], dict[str, Any]]]] | None:
        names = self.get_template_names()  # type: ignore[attr-defined]
        template = select_template(names, using=self.template_engine)  # type: ignore[attr-defined]
        identity = template_identity(template)
        if identity is None:
            log_once(
                (self.get_cache_name(),),
                "Dashboard %s: its template is not a Django template; its page "
                "is rendered on each request.",
                self.get_cache_name(),
            )
            return None
        if (self.get_cache_name(), identity) in _plain_pages:
            return None
        return identity, template.template.engine.template_context_processors


#: Pages found to read the user, by dashboard and template identity: their
#: keys tell users apart. Learnt while rendering, per process.
_user_pages: set[tuple[str, str]] = set()

#: Pages found to read something that may differ on each request: they are
#: rendered without a watch and never looked up. Learnt per process.
_plain_pages: set[tuple[str, str]] = set()


def _render_plainly(name: str, identity: str, reason: str) -> None:
    """Stop caching a page found to depend on each request, and say why once."""
    _plain_pages.add((name, identity))
    log_once(
        (name, identity),
        "Dashboard %s: its template %s, so its page is rendered on each request "
        "from now on.",
        name,
        reason,
    )


def _reads_user(name: str, identity: str) -> bool:
    return (name, identity) in _user_pages


def _has_messages(request: HttpRequest) -> bool:
    """Whether a message waits to be shown on this request's page."""
    storage = getattr(request, "_messages", None)
    return storage is not None and len(storage) > 0


def cached_context(
    watch: Sequence[ModelRef],
    *,
    timeout: int | None = None,
    query_params: Sequence[str] = (),
    scope: Callable[[HttpRequest], Hashable] = default_scope,
    name: str | None = None,
    serve_stale: bool = True,
    share_across_user_kinds: bool = False,
) -> Callable[[Callable[..., Data]], Callable[..., CacheResult]]:
    """Cache what a function of the request computes, for function views.

    The decorated function takes the request (and any further arguments,
    such as the URL's, which then take part in the key) and returns plain
    data; it then returns a
    :class:`~maintenance_perf.cache.CacheResult`, whose ``data`` the view
    renders::

        @cached_context(watch=["equipment", "activity"])
        def dashboard_data(request):
            return {"by_status": count_by(Equipment.objects.all(), "status")}

        def dashboard(request):
            result = dashboard_data(request)
            context = {**result.data, "dashboard_cache": result}
            return render(request, "dashboard.html", context)
    """

    def decorate(function: Callable[..., Data]) -> Callable[..., CacheResult]:
        dashboard = name or f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> CacheResult:
            parts = cache_scope_for(
                request,
                scope(request),
                query_params,
                share_across_user_kinds,
                _url_arguments(args, kwargs),
            )
            return get_or_compute(
                dashboard,
                parts,
                watch,
                lambda: function(request, *args, **kwargs),
                timeout=timeout,
                serve_stale=serve_stale,
            )

        decorated_dashboards[wrapper] = (dashboard, tuple(watch))
        return wrapper

    return decorate
