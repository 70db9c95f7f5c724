"""Plain-text tables for the commands' reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def table_lines(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], indent: str = ""
) -> list[str]:
    """Return the header and rows as aligned lines, figures to the right."""
    widths = [
        max(len(row[column]) for row in [header, *rows])
        for column in range(len(header))
    ]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if cell[:1].isdigit() else cell.ljust(width)
            for cell, width in zip(row, widths, strict=True)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines
