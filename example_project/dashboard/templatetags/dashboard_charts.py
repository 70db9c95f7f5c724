"""Geometry for the dashboard's server-rendered SVG bar chart."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

BAR_WIDTH = 14
GROUP_WIDTH = 44
PLOT_HEIGHT = 140
LABEL_SPACE = 18


@register.simple_tag
def chart_scale(weeks: list[dict[str, Any]]) -> dict[str, int]:
    """Return the chart's size and the largest value, which sets the scale."""
    largest = max([max(week["scheduled"], week["completed"]) for week in weeks] or [0])
    return {
        "width": GROUP_WIDTH * len(weeks),
        "height": PLOT_HEIGHT + LABEL_SPACE,
        "label_y": PLOT_HEIGHT + LABEL_SPACE - 4,
        "largest": max(largest, 1),
    }


@register.simple_tag
def bar_geometry(
    week: dict[str, Any], index: int, scale: dict[str, int]
) -> dict[str, float]:
    """Return the positions of one week's two bars."""
    scheduled = PLOT_HEIGHT * week["scheduled"] / scale["largest"]
    completed = PLOT_HEIGHT * week["completed"] / scale["largest"]
    x = index * GROUP_WIDTH + 6
    return {
        "x": x,
        "x2": x + BAR_WIDTH + 2,
        "width": BAR_WIDTH,
        "scheduled_y": round(PLOT_HEIGHT - scheduled, 1),
        "scheduled_height": round(scheduled, 1),
        "completed_y": round(PLOT_HEIGHT - completed, 1),
        "completed_height": round(completed, 1),
        "label_x": x + BAR_WIDTH + 1,
    }
