#!/usr/bin/env python
"""Django's command-line utility for the example maintenance site."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # Let the example run from a checkout without installing the app first.
    root = Path(__file__).resolve().parent
    sys.path.insert(0, str(root))
    sys.path.insert(1, str(root.parent / "src"))

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
