"""Cache a dashboard's whole rendered page, keeping its per-request parts live.

A warm dashboard should cost about what Django's ``cache_page`` costs, but
``cache_page`` hands one user's page (CSRF token, messages, user menu) to
the next. Here the page is rendered once per data version, scope and
template, and every value that belongs to one request is watched while it
renders:

- the CSRF token is written as a marker and replaced by the current
  request's own token whenever the page is served;
- the dashboard's cache status is a marker too, so it always tells the truth;
- a page that reads ``user`` or ``perms`` is kept per user;
- a page that shows messages is rendered afresh while a message is pending;
- a page that reads ``request``, ``view`` or any other context processor's
  value is never stored: it is rendered on each request, as without this
  mode, and the reason is logged once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.template.base import Template as DjangoTemplate
from django.template.loader_tags import ExtendsNode, IncludeNode
from django.utils.functional import SimpleLazyObject

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable

    from django.http import HttpRequest

logger = logging.getLogger(__name__)

#: Context processor values and what reading them makes a page depend on.
USER_NAMES = frozenset({"user", "perms"})
MESSAGES_NAME = "messages"
CSRF_NAME = "csrf_token"
#: What Django's i18n, tz, static and media context processors provide: the
#: active language and time zone, which every key holds, and settings.
KEYED_NAMES = frozenset(
    {"LANGUAGES", "LANGUAGE_CODE", "LANGUAGE_BIDI", "TIME_ZONE", "STATIC_URL"}
    | {"MEDIA_URL"}
)


@dataclass(frozen=True)
class Page:
    """A rendered page with markers where per-request values go."""

    token: str
    content: bytes
    content_type: str
    status_marker: bytes
    csrf_marker: bytes
    shows_messages: bool
    #: The versions of the user models when a page that reads the user was
    #: rendered; empty for other pages.
    user_versions: tuple[Any, ...] = ()

    #: Whether a filter changed the case of a marker (``upper``, ``title``):
    #: then the markers are found whatever their case.
    any_case: bool = False

    def serve(self, csrf_token: Callable[[], str], status: str) -> bytes:
        """Return the page for one request: its own CSRF token and cache status."""
        values = {self.status_marker: status.encode()}
        if self.csrf_marker:
            values[self.csrf_marker] = csrf_token().encode()
        if not self.any_case:
            content = self.content
            for marker, value in values.items():
                content = content.replace(marker, value)
            return content

        lowered = {marker.lower(): value for marker, value in values.items()}
        return _any_case(values).sub(
            lambda match: lowered[match.group().lower()], self.content
        )


def _any_case(markers: Iterable[bytes]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(marker) for marker in markers), re.I)


def markers_found(content: bytes, marker: bytes) -> tuple[int, int]:
    """Count a marker in a page as written, and whatever its case."""
    return content.count(marker), len(_any_case([marker]).findall(content))


class LiveText(str):
    """Text that compares as its value but is printed as a marker.

    A template that prints it writes the marker, which each serve of the page
    replaces; code and template logic that compare it see the value of the
    request that rendered the page.
    """

    marker: str

    def __new__(cls, value: str, marker: str) -> LiveText:
        text = super().__new__(cls, value)
        text.marker = marker
        return text

    def __str__(self) -> str:
        return self.marker

    def __html__(self) -> str:
        return self.marker


class PageRecorder:
    """Watch what one render of a page reads besides the dashboard's data."""

    def __init__(self) -> None:
        # Letters and digits only, so that escaping filters (escape,
        # escapejs, urlencode) leave the markers as they are.
        self.status_marker = f"mperfstatus{uuid.uuid4().hex}"
        self.csrf_marker = f"mperfcsrf{uuid.uuid4().hex}"
        self.user_names: set[str] = set()
        self.request_names: set[str] = set()
        self.read_csrf = False
        self.read_messages = False

    def live_context(
        self,
        request: HttpRequest,
        processors: Collection[Callable[[HttpRequest], dict[str, Any]]],
        stable: Collection[str],
        view: object,
    ) -> dict[str, Any]:
        """Return values that shadow the context processors' own while watched.

        Values named in ``stable`` are the same for every request (a site
        name, say) and are passed through unwatched.
        """
        provided: dict[str, Any] = {}
        for processor in processors:
            provided.update(processor(request))
        provided["view"] = view

        live: dict[str, Any] = {}
        for name, value in provided.items():
            if name in stable or name in KEYED_NAMES:
                live[name] = value
            elif name == CSRF_NAME:
                live[name] = SimpleLazyObject(self._csrf)
            else:
                live[name] = SimpleLazyObject(self._watcher(name, value))
        return live

    def _csrf(self) -> str:
        self.read_csrf = True
        return self.csrf_marker

    def _watcher(self, name: str, value: Any) -> Callable[[], Any]:
        def read() -> Any:
            if name in USER_NAMES:
                self.user_names.add(name)
            elif name == MESSAGES_NAME:
                self.read_messages = True
            else:
                self.request_names.add(name)
            return value

        return read

    @property
    def reads_user(self) -> bool:
        return bool(self.user_names)


def template_identity(template: Any) -> str | None:
    """Return a digest of a Django template with every template it names.

    The digest covers the template's name and source and, recursively, those
    of the templates it extends or includes by a constant name, so a changed
    base template gets new page keys. It is computed once per loaded template
    object. Returns None for templates of other engines.
    """
    # A backend's template wraps the engine's own, which has the nodes.
    inner = (
        template
        if hasattr(template, "nodelist")
        else getattr(template, "template", None)
    )
    if not isinstance(inner, DjangoTemplate):
        return None
    identity: str | None = getattr(inner, "_maintenance_perf_identity", None)
    if identity is None:
        identity = _digest_tree(inner, set())
        inner._maintenance_perf_identity = identity  # type: ignore[attr-defined]
    return identity


def _digest_tree(template: DjangoTemplate, seen: set[str]) -> str:
    name = str(template.origin.name)
    seen.add(name)
    hasher = hashlib.sha256(name.encode())
    hasher.update(template.source.encode())

    for extends in template.nodelist.get_nodes_by_type(ExtendsNode):
        parent = cast("ExtendsNode", extends).parent_name
        hasher.update(_named_digest(template, parent, seen))
    for include in template.nodelist.get_nodes_by_type(IncludeNode):
        included = cast("IncludeNode", include).template
        hasher.update(_named_digest(template, included, seen))
    return hasher.hexdigest()[:32]


def _named_digest(
    template: DjangoTemplate, expression: object, seen: set[str]
) -> bytes:
    # A name held in a variable is only known while rendering; such a
    # template's changes reach cached pages at the next data version.
    name = getattr(expression, "var", None)
    if not isinstance(name, str) or getattr(expression, "filters", True):
        return b"dynamic"
    if name in seen:
        return name.encode()
    return _digest_tree(template.engine.get_template(name), seen).encode()


class _Once:
    """Log a message once per key in this process."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, ...]] = set()

    def __call__(self, key: tuple[str, ...], message: str, *args: object) -> None:
        if key in self._seen:
            return
        self._seen.add(key)
        logger.info(message, *args)


log_once = _Once()
