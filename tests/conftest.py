"""Shared fixtures, and the rule for services the tests need.

A test run names its services through the settings: ``DATABASE_URL`` (for
PostgreSQL) and ``REDIS_URL``. When one is unreachable, every test is skipped
with the reason, except under ``CI=true``, where the run fails at once: CI
must never pass by skipping.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "azure-pdm"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unreachable_services() -> list[str]:
    problems = []
    for variable in ("DATABASE_URL", "REDIS_URL"):
        url = os.environ.get(variable, "")
        parts = urlsplit(url)
        if not parts.hostname:
            continue
        try:
            socket.create_connection(
                (parts.hostname, parts.port or 0), timeout=2
            ).close()
        except OSError as error:
            problems.append(f"{variable}={url} is unreachable ({error})")
    return problems


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    problems = _unreachable_services()
    if not problems:
        return
    reason = "; ".join(problems)
    if IN_CI:
        pytest.exit(f"CI needs every service the tests use: {reason}", returncode=3)
    marker = pytest.mark.skip(reason=f"{reason}: start the service to run these tests")
    for item in items:
        item.add_marker(marker)


@pytest.fixture(scope="session")
def azure_pdm_dir() -> Path:
    """The folder of the public Azure predictive-maintenance CSV files."""
    folder = Path(os.environ.get("MPERF_AZURE_PDM_DIR", DEFAULT_DATA_DIR))
    if not (folder / "machines.csv").is_file():
        message = (
            f"the Azure PdM data set is not at {folder}; "
            "set MPERF_AZURE_PDM_DIR to its folder"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(autouse=True)
def _fresh_dashboard_cache() -> None:
    """Start every test with an empty cache and zeroed dashboard counters."""
    from django.core.cache import caches

    from maintenance_perf import pages, views
    from maintenance_perf.cache import counters, health

    for cache in caches.all():
        cache.clear()
    counters.reset()
    health.reset()
    # What this process learnt about page templates, and what it logged once.
    views._user_pages.clear()
    views._plain_pages.clear()
    pages.log_once._seen.clear()
