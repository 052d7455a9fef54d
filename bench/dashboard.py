"""`make bench-dashboard`: dashboard page latency with 10,000 jobs and 200,000 runs stored.

Starts the local MongoDB stand-in (or uses CRON_MONGODB_URI), seeds it, starts a real
`cronjobs-api`, signs in through the form and times sequential page loads. Also times the
overview's snapshot computation on its own (what a refresh costs the database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from api.dashboard.overview import SNAPSHOT_MAX_AGE, compute_snapshot
from bench.dashboard_data import seed
from shared.db import create_client, ensure_indexes
from shared.settings import load_settings
from shared.tokens import mint_token
from tools.api_process import ApiProcess
from tools.local_mongo import ROOT, LocalMongo

RESULTS = ROOT / "bench" / "results" / "dashboard.json"
SECRET = "bench-dashboard-secret-0123456789abcdef"
OVERVIEW_SPREAD_SECONDS = 4 * SNAPSHOT_MAX_AGE.total_seconds()
PAGES = {
    "overview": "/dashboard/",
    "overview panel (auto-refresh)": "/dashboard/overview/panel",
    "jobs: newest first": "/dashboard/jobs/",
    "jobs: by next run": "/dashboard/jobs/?sort=next",
    "jobs: by last run": "/dashboard/jobs/?sort=last",
    "jobs: by failures": "/dashboard/jobs/?sort=failures",
    "jobs: owner filter": "/dashboard/jobs/?owner=user-0042&sort=next",
    "jobs: name search": "/dashboard/jobs/?q=job+001",
    "jobs: status failed, page 10": "/dashboard/jobs/?status=failed&page=10",
}


@contextmanager
def _database() -> Iterator[str]:
    external = os.environ.get("CRON_MONGODB_URI")
    if external:
        yield external
        return
    with LocalMongo() as server:
        yield server.uri


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _sign_in(client: httpx.Client, settings_token: str) -> None:
    page = client.get("/dashboard/sign-in")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, "no CSRF token on the sign-in page"
    response = client.post(
        "/dashboard/sign-in", data={"_csrf_token": found.group(1), "token": settings_token}
    )
    assert response.status_code == 303, response.text


def _time_pages(base_url: str, token: str, requests: int) -> dict[str, dict[str, float]]:
    results = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        _sign_in(client, token)
        for label, path in PAGES.items():
            for _ in range(3):  # warm-up (first snapshot, connection pool)
                assert client.get(path).status_code == 200
            samples = []
            # Overview loads are spread over several snapshot lifetimes, so that the timed loads
            # include the ones that start a refresh and those served while it runs.
            pause = OVERVIEW_SPREAD_SECONDS / requests if label.startswith("overview") else 0.0
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                time.sleep(pause)
                assert response.status_code == 200, (path, response.status_code)
            results[label] = _percentiles(samples)
            print(f"{label:34s} {results[label]}", flush=True)
    return results


async def _seed_and_time_snapshot(
    uri: str, db_name: str, args: argparse.Namespace
) -> dict[str, float]:
    settings = load_settings({}, mongodb_uri=uri, db_name=db_name, jwt_secret=SECRET)
    client = create_client(settings)
    db = client[db_name]
    await ensure_indexes(db, settings)
    started = time.perf_counter()
    await seed(db, jobs=args.jobs, runs=args.runs, days=args.days)
    print(f"seeded {args.jobs} jobs, {args.runs} runs in {time.perf_counter() - started:.0f} s")
    samples = []
    for _ in range(args.snapshots):
        snapshot = await compute_snapshot(db, timedelta(seconds=60))
        samples.append(snapshot.compute_ms)
    await client.close()
    result = _percentiles(samples)
    print(f"{'overview snapshot computation':34s} {result}", flush=True)
    return result


def main() -> None:
    """Seed, serve, measure, write bench/results/dashboard.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=7.0, help="runs spread over this many days")
    parser.add_argument("--requests", type=int, default=200, help="timed loads per page")
    parser.add_argument("--snapshots", type=int, default=20)
    args = parser.parse_args()
    db_name = f"bench_dashboard_{int(time.time())}"
    with _database() as uri, tempfile.TemporaryDirectory() as scratch:
        snapshot = asyncio.run(_seed_and_time_snapshot(uri, db_name, args))
        env = {
            "CRON_MONGODB_URI": uri,
            "CRON_DB_NAME": db_name,
            "CRON_JWT_SECRET": SECRET,
            "CRON_RATE_LIMIT": "1000000/minute",
            "CRON_LOG_LEVEL": "WARNING",
        }
        settings = load_settings({}, jwt_secret=SECRET)
        token = mint_token(settings, "bench-admin", roles=["admin"])
        with ApiProcess(env, Path(scratch) / "api.log") as api:
            pages = _time_pages(api.base_url, token, args.requests)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": "CRON_MONGODB_URI" if os.environ.get("CRON_MONGODB_URI") else "local stand-in",
        "jobs": args.jobs,
        "runs": args.runs,
        "runs_spread_days": args.days,
        "load_average_1_5_15_min_at_end": [round(value, 1) for value in os.getloadavg()],
        "cpus": os.cpu_count(),
        "pages": pages,
        "overview_snapshot_computation": snapshot,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
