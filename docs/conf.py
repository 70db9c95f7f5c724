"""Sphinx configuration."""

from __future__ import annotations

project = "django-maintenance-perf"
author = "django-maintenance-perf developers"
copyright = "2026, django-maintenance-perf developers"

extensions: list[str] = []
html_theme = "furo"
html_title = project
exclude_patterns = ["_build"]
nitpicky = False
