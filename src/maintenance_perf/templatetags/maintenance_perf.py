"""``{% cached_section %}``: cache the rendered HTML of a dashboard section.

Rendering a large table costs more than reading the cached data it shows, so
a warm load should render only the page around such sections::

    {% load maintenance_perf %}
    {% cached_section "locations" %}
      ... the location table ...
    {% endcached_section %}

The section is keyed by the computation its data came from (the
``dashboard_cache`` context variable a cached dashboard view sets), the
template it stands in, a digest of that template's source and the section's
name, so a new cache version, another scope or a template override each get
their own entry. Without ``dashboard_cache`` in the context, or when the data
did not come from a cache entry, the section is simply rendered.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django import template

from maintenance_perf.cache import CacheResult, get_section, section_key, set_section
from maintenance_perf.views import CONTEXT_NAME

if TYPE_CHECKING:
    from django.template.base import FilterExpression, NodeList, Parser, Token

register = template.Library()


class CachedSectionNode(template.Node):
    def __init__(
        self,
        nodelist: NodeList,
        name: FilterExpression,
        template_name: str,
        source_digest: str,
    ) -> None:
        self.nodelist = nodelist
        self.name = name
        self.template_name = template_name
        self.source_digest = source_digest

    def render(self, context: template.Context) -> str:
        result = context.get(CONTEXT_NAME)
        if not isinstance(result, CacheResult) or not result.token:
            return self.nodelist.render(context)

        key = section_key(
            result.token,
            self.template_name,
            self.source_digest,
            str(self.name.resolve(context)),
        )
        html = get_section(key)
        if html is None:
            html = self.nodelist.render(context)
            set_section(key, html, result.timeout)
        return html


@register.tag
def cached_section(parser: Parser, token: Token) -> CachedSectionNode:
    """Cache the rendered HTML between this tag and ``endcached_section``."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError(
            f"{bits[0]} takes exactly one argument, the section's name: "
            f'{{% {bits[0]} "locations" %}}'
        )
    nodelist = parser.parse(("endcached_section",))
    parser.delete_first_token()

    origin = parser.origin
    template_name = str(getattr(origin, "name", "") or "")
    # Templates are parsed once per process (or per request with DEBUG and
    # no cached loader), so hashing the source here costs nothing per render.
    # A changed template deployed under the same name gets new keys.
    loader = getattr(origin, "loader", None)
    source = loader.get_contents(origin) if loader else ""
    source_digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    return CachedSectionNode(
        nodelist, parser.compile_filter(bits[1]), template_name, source_digest
    )
