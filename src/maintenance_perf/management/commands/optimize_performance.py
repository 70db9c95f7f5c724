"""List what to change in the project to make it fast, with why and how."""

from __future__ import annotations

import json
import sys
import textwrap
from collections import Counter
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from maintenance_perf.advice import LEVELS, at_or_above, collect
from maintenance_perf.check_messages import suggest

if TYPE_CHECKING:
    from collections.abc import Sequence

    from maintenance_perf.advice import Finding, Level

WIDTH = 88


class Command(BaseCommand):
    help = (
        "Check the cache, database connections, beat schedule, indexes, "
        "dashboards and DEBUG, and list what to change, each with why and how."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fail-level",
            help="Exit with status 1 when a finding is at this level or above: "
            f"{', '.join(LEVELS)}. By default the command only reports.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the findings as JSON."
        )
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="The database whose connections and indexes to check "
            "(default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fail_level = _fail_level(options["fail_level"])
        using = options["database"]
        if using not in connections:
            raise CommandError(
                f"--database {using!r} is not in DATABASES; use one of: "
                f"{', '.join(connections)}." + suggest(using, connections)
            )

        findings = collect(using)

        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"findings": [finding.as_dict() for finding in findings]},
                    indent=2,
                )
            )
        else:
            self._report(findings)

        if fail_level is not None and at_or_above(findings, fail_level):
            sys.exit(1)

    def _report(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            heading = f"[{finding.level}] {finding.id}: {finding.title}"
            self.stdout.write(_wrapped(heading, "", "  "))
            self.stdout.write(_wrapped(f"Why: {finding.why}", "  ", "       "))
            self.stdout.write(_wrapped(f"How: {finding.how}", "  ", "       "))
            self.stdout.write("")
        self.stdout.write(summary(findings))


def summary(findings: Sequence[Finding]) -> str:
    """Say how many findings there are at each level."""
    if not findings:
        return "No findings: nothing to change."
    counts = Counter(finding.level for finding in findings)
    parts = [
        f"{counts[level]} {level}{'s' if counts[level] > 1 and level != 'info' else ''}"
        for level in reversed(LEVELS)
        if counts[level]
    ]
    return f"{len(findings)} finding{'s' if len(findings) > 1 else ''}: " + (
        ", ".join(parts) + "."
    )


def _wrapped(text: str, first: str, then: str) -> str:
    # Long identifiers such as index names and settings paths stay whole.
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=then,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _fail_level(value: str | None) -> Level | None:
    if value is None:
        return None
    for level in LEVELS:
        if value == level:
            return level
    raise CommandError(
        f"--fail-level must be one of {', '.join(LEVELS)}, not {value!r}."
        + suggest(value, LEVELS)
    )
