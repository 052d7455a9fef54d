"""Overview, failures and workers pages against stored runs and heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from api.dashboard.overview import compute_snapshot
from shared.db import JOBS, RUNS, WORKERS, Database
from tests.integration.api.dashboard.helpers import DashboardSession


def _run(status: str, ended_ago: timedelta, lag: timedelta = timedelta(0), **fields: Any):
    ended = datetime.now(UTC) - ended_ago
    scheduled = ended - timedelta(seconds=2)
    return {
        "_id": ObjectId(),
        "jobId": ObjectId(),
        "ownerId": "alice",
        "jobName": "digest",
        "type": "echo",
        "slot": str(ObjectId()),
        "scheduledFor": scheduled,
        "trigger": "schedule",
        "attempt": 1,
        "status": status,
        "createdAt": scheduled,
        "startedAt": scheduled + lag,
        "endedAt": ended,
        **fields,
    }


def _unfinished(status: str):
    run = _run(status, timedelta(0))
    del run["endedAt"]
    return run


async def test_overview_counts_runs_by_window_and_outcome(db: Database) -> None:
    minutes, hours = timedelta(minutes=5), timedelta(hours=5)
    await db[RUNS].insert_many(
        [
            *[_run("succeeded", minutes, timedelta(milliseconds=100)) for _ in range(6)],
            _run("failed", minutes, timedelta(milliseconds=900), error="boom"),
            _run("timeout", minutes, error="timed out"),
            _run("skipped", minutes),
            *[_run("succeeded", hours) for _ in range(10)],
            _run("abandoned", hours, error="lease expired"),
            _run("failed", timedelta(days=2), error="too old to count"),
            _unfinished("running"),
            {**_unfinished("pending"), "notBefore": datetime.now(UTC) - hours},
            {**_unfinished("pending"), "notBefore": datetime.now(UTC) + hours},  # not due yet
        ]
    )
    await db[JOBS].insert_one(
        {
            "_id": ObjectId(),
            "ownerId": "a",
            "name": "n",
            "status": "idle",
            "enabled": True,
            "nextRunAt": datetime.now(UTC) - minutes,
        }
    )
    await db[WORKERS].insert_many(
        [
            {
                "_id": "w1",
                "name": "alpha",
                "lastSeenAt": datetime.now(UTC),
                "mode": "streams",
                "runsInFlight": 2,
            },
            {"_id": "w2", "name": "gone", "lastSeenAt": datetime.now(UTC) - hours},
        ]
    )
    snapshot = await compute_snapshot(db, timedelta(seconds=60))
    assert snapshot.last_hour.counts == {"succeeded": 6, "failed": 1, "timeout": 1, "skipped": 1}
    assert snapshot.last_day.counts == {
        "succeeded": 16,
        "failed": 1,
        "timeout": 1,
        "skipped": 1,
        "abandoned": 1,
    }
    assert snapshot.last_hour.failure_ratio == 2 / 8
    assert snapshot.last_day.failure_ratio == 3 / 19
    assert snapshot.lag_sample == 9
    assert snapshot.lag_p50_ms == 100
    assert snapshot.lag_p99_ms is not None and 100 < snapshot.lag_p99_ms <= 900
    assert (snapshot.due_jobs, snapshot.due_runs) == (1, 1)
    assert snapshot.jobs_by_status["idle"] == 1
    assert [worker.name for worker in snapshot.workers_alive] == ["alpha"]


async def test_overview_page_and_its_refresh_panel(admin: DashboardSession, db: Database) -> None:
    await db[WORKERS].insert_one(
        {"_id": "w1", "name": "alpha", "lastSeenAt": datetime.now(UTC), "mode": "polling"}
    )
    page = await admin.get("/dashboard/")
    assert page.status_code == 200
    assert "Workers alive" in page.text and "polling" in page.text
    assert 'data-refresh-url="/dashboard/overview/panel"' in page.text
    panel = await admin.get("/dashboard/overview/panel", headers={"x-dashboard-fetch": "1"})
    assert panel.status_code == 200
    assert "<html" not in panel.text and "Fire lag" in panel.text


async def test_failures_are_grouped_by_type_and_error(
    admin: DashboardSession, db: Database
) -> None:
    minutes = timedelta(minutes=5)
    await db[RUNS].insert_many(
        [
            *[_run("failed", minutes, error="HTTP 500") for _ in range(3)],
            _run("timeout", minutes, error="HTTP 500"),
            _run("abandoned", minutes, error="lease <expired>", type="sendEmail"),
            _run("succeeded", minutes),
        ]
    )
    page = await admin.get("/dashboard/failures")
    assert page.status_code == 200
    groups = page.text.split('id="failure-groups"')[1].split("</table>")[0]
    assert groups.count("<tr>") == 3  # header + 2 groups
    assert "<td>4</td>" in groups and "failed, timeout" in groups
    assert "lease &lt;expired&gt;" in groups


async def test_workers_page_tolerates_missing_and_extra_fields(
    admin: DashboardSession, db: Database
) -> None:
    now = datetime.now(UTC)
    await db[WORKERS].insert_many(
        [
            {
                "_id": "w1",
                "name": "alpha",
                "host": "h1",
                "pid": 42,
                "version": "0.1.0",
                "startedAt": now - timedelta(hours=1),
                "lastSeenAt": now,
                "runsInFlight": 3,
                "mode": "streams",
                "somethingNew": {"x": 1},
            },
            {"_id": "w2", "lastSeenAt": now - timedelta(hours=2)},
            {"_id": "w3", "name": "w-three", "lastSeenAt": now, "stoppedAt": now},
            {"_id": "w4", "name": "odd", "lastSeenAt": "not a date"},
        ]
    )
    page = await admin.get("/dashboard/workers")
    assert page.status_code == 200
    table = page.text.split('id="workers"')[1]
    assert table.count(">alive<") == 1
    assert table.count(">stale<") == 2
    assert table.count(">stopped<") == 1
    assert "h1" in table and "42" in table
