"""Build the app's system check messages, ids ``maintenance_perf.E001`` ...

Kept apart from :mod:`maintenance_perf.checks` so that the modules whose
settings it validates can build messages without importing it.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from django.core import checks

if TYPE_CHECKING:
    from collections.abc import Iterable


def error(msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"maintenance_perf.E{number:03d}")


def warning(msg: str, hint: str, number: int) -> checks.Warning:
    return checks.Warning(msg, hint=hint, id=f"maintenance_perf.W{number:03d}")


def suggest(word: str, choices: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
