"""Measure the example dashboard: naive, computed, cached, and cache_page.

Run from the repository root, e.g.:

    python benchmarks/bench_dashboard.py --data azure ../shared/data/azure-pdm
    python benchmarks/bench_dashboard.py --data generated --runs 15
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mperf_bench \\
        python benchmarks/bench_dashboard.py --data generated

It creates (or reuses) the database the settings name, loads the data set
once, then requests each page ``--runs`` times through Django's test client
and prints the median milliseconds and the query count of each. It is a
measurement, not a test: figures vary from machine to machine and run to run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "example_project"), str(ROOT / "src")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maintenance_dashboard.settings")
os.environ.setdefault("DATABASE_URL", "sqlite:////tmp/mperf-bench.sqlite3")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.core.cache import caches  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.views.decorators.cache import cache_page  # noqa: E402

from dashboard.views import DashboardView, NaiveDashboardView  # noqa: E402
from equipment.models import Equipment  # noqa: E402


class SectionsOnlyView(DashboardView):
    """The dashboard with its data and sections cached, but not its page."""

    cache_rendered_page = False
    cache_name = "sections-only"


urlpatterns = [
    path("", include("maintenance_dashboard.urls")),
    path("sections/", SectionsOnlyView.as_view()),
    path("cache-page/", cache_page(300)(NaiveDashboardView.as_view())),
]


def load(data: str, folder: str | None) -> None:
    call_command("migrate", verbosity=0)
    if Equipment.objects.exists():
        print(f"Reusing the data already in {connection.settings_dict['NAME']}")
        return
    if data == "azure":
        call_command("import_azure_pdm", folder, no_progress=True, verbosity=0)
    else:
        call_command(
            "generate_maintenance_data",
            locations=50,
            equipment=5000,
            activities=50000,
            seed=1,
            no_progress=True,
            verbosity=0,
        )


def measure(
    client: Client, url: str, runs: int, cold: bool = False
) -> tuple[float, int]:
    """Return the median milliseconds and the query count of ``runs`` loads."""
    timings = []
    queries = 0
    for _ in range(runs):
        if cold:
            caches["default"].clear()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    return statistics.median(timings), queries


def measure_warm(client: Client, urls: list[str], runs: int) -> list[tuple[float, int]]:
    """Like :func:`measure` for warm pages, taking turns so drift hits all alike."""
    timings: dict[str, list[float]] = {url: [] for url in urls}
    queries = dict.fromkeys(urls, 0)
    for url in urls:
        client.get(url)
    for _ in range(runs):
        for url in urls:
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                timings[url].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries[url] = len(captured)
    return [(statistics.median(timings[url]), queries[url]) for url in urls]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["azure", "generated"], default="generated")
    parser.add_argument(
        "folder", nargs="?", default=str(ROOT.parent / "shared/data/azure-pdm")
    )
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument(
        "--warm-runs",
        type=int,
        default=201,
        help="loads of each warm page (they take well under a millisecond)",
    )
    args = parser.parse_args()

    load(args.data, args.folder)
    client = Client()
    rows = []
    with override_settings(ROOT_URLCONF=__name__, DEBUG=False):
        client.get("/naive/")  # warm up connections and templates
        naive = measure(client, "/naive/", args.runs)
        rows.append(("/naive/ (no cache)", *naive))
        rows.append(
            ("/ cold (cache cleared)", *measure(client, "/", args.runs, cold=True))
        )
        warm, sections, page = measure_warm(
            client, ["/", "/sections/", "/cache-page/"], args.warm_runs
        )
        rows.append(("/ warm (cached page)", *warm))
        rows.append(("/ warm (data and sections)", *sections))
        rows.append(("cache_page warm", *page))

    vendor = connection.vendor
    print(
        f"\n{args.data} data on {vendor}, cache {type(caches['default']).__name__}, "
        f"{Equipment.objects.count()} equipment, median of {args.runs} runs "
        f"({args.warm_runs} for warm pages)"
    )
    print(f"{'page':28} {'median ms':>10} {'queries':>8} {'vs naive':>9}")
    for name, ms, queries in rows:
        print(f"{name:28} {ms:10.2f} {queries:8d} {naive[0] / ms:8.1f}x")
    print(f"warm / cache_page: {warm[0] / page[0]:.2f}x")


if __name__ == "__main__":
    main()
