"""Cache a dashboard's computed context, for class-based and function views.

Only the context data is cached, never the response: the page is rendered on
every request, so CSRF tokens, messages and the user menu stay live. The
data-heavy parts of a template can be cached too, with the
``{% cached_section %}`` tag of the ``maintenance_perf`` template library.
"""

from __future__ import annotations

import functools
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from maintenance_perf.cache import CacheResult, ModelRef, get_or_compute

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from django.http import HttpRequest

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
) -> tuple[Any, ...]:
    """Return every part of a request that the cached data may depend on.

    Only the query parameters a view declares take part, so any other
    parameter can neither change the data nor grow the cache.
    """
    params = tuple((name, request.GET.getlist(name)) for name in sorted(query_params))
    kind = "any" if share_across_user_kinds else user_kind(request)
    return (kind, scope, params)


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

    request: HttpRequest

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

    def get_cached_dashboard(self) -> CacheResult:
        """Return the dashboard's data with how it was obtained."""
        scope = cache_scope_for(
            self.request,
            self.get_cache_scope(),
            self.cache_query_params,
            self.cache_share_across_user_kinds,
        )
        return get_or_compute(
            self.get_cache_name(),
            scope,
            self.watch_models,
            self.get_dashboard_data,
            timeout=self.cache_timeout,
            serve_stale=self.cache_serve_stale,
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        result = self.get_cached_dashboard()
        context.update(result.data)
        context[CONTEXT_NAME] = result
        return context


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
    which must not change the data: put such inputs in ``query_params`` or
    ``scope``) and returns plain data; it then returns a
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
                request, scope(request), query_params, share_across_user_kinds
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
