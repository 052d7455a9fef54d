"""generateReport handler: aggregation over cron_runs, owner isolation, stored report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared.db import REPORTS, RUNS, Database
from shared.job_types.generate_report import GenerateReportPayload
from tests.integration.job_types.conftest import ContextFactory
from worker.handlers import generate_report

END = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 in Berlin, the day clocks went forward
START = datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 in Berlin the day before (23 h)
MINE_A, MINE_B, THEIRS = ObjectId(), ObjectId(), ObjectId()


def _run(job: ObjectId, owner: str, at: datetime, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "jobId": job,
        "ownerId": owner,
        "jobName": {MINE_A: "alpha", MINE_B: "beta"}.get(job, "other"),
        "type": "noop",
        "slot": f"{at.isoformat()}-{ObjectId()}",
        "scheduledFor": at,
        "trigger": "schedule",
        "attempt": extra.pop("attempt", 1),
        "status": status,
        "createdAt": at,
        **extra,
    }


async def _seed(db: Database) -> None:
    inside = START + timedelta(hours=1)
    await db[RUNS].insert_many(
        [
            _run(MINE_A, "user-1", inside, "succeeded", durationMs=100),
            _run(MINE_A, "user-1", inside + timedelta(hours=1), "succeeded", durationMs=300),
            _run(
                MINE_A,
                "user-1",
                inside + timedelta(hours=2),
                "failed",
                durationMs=50,
                error="HTTP 500 from example.com",
            ),
            _run(
                MINE_A,
                "user-1",
                inside + timedelta(hours=3),
                "timeout",
                durationMs=900,
                error="timed out after 1 s",
                attempt=2,
            ),
            _run(MINE_A, "user-1", inside + timedelta(hours=4), "skipped"),
            _run(MINE_A, "user-1", inside + timedelta(hours=5), "missed", missedCount=4),
            _run(MINE_B, "user-1", START, "abandoned", error="lease expired"),  # first instant
            _run(MINE_B, "user-1", inside, "missed"),
            # Outside the period: just before its start, exactly at its (exclusive) end.
            _run(MINE_B, "user-1", START - timedelta(seconds=1), "failed", error="too early"),
            _run(MINE_B, "user-1", END, "failed", error="too late"),
            # Somebody else's runs inside the period.
            _run(THEIRS, "user-2", inside, "failed", error="secret of user-2", durationMs=5),
            _run(THEIRS, "user-2", inside, "succeeded", durationMs=7000),
        ]
    )


async def _report(db: Database, make_context: ContextFactory, payload: dict[str, Any], **kw: Any):
    ctx = make_context("generateReport", payload, timezone="Europe/Berlin", scheduled_for=END, **kw)
    result = await generate_report.handle(ctx, GenerateReportPayload.model_validate(payload))
    assert result is not None
    stored = await db[REPORTS].find_one({"_id": ObjectId(result["reportId"])})
    assert stored is not None
    return ctx, stored


async def test_job_runs_report_counts_the_owners_jobs_only(
    db: Database, make_context: ContextFactory
) -> None:
    await _seed(db)
    ctx, report = await _report(db, make_context, {"type": "jobRuns", "period": "daily"})

    assert report["ownerId"] == "user-1"
    assert report["jobId"] == ctx.job.id
    assert str(report["runId"]) == ctx.run_id
    assert (report["type"], report["period"], report["timezone"]) == (
        "jobRuns",
        "daily",
        "Europe/Berlin",
    )
    assert (report["periodStart"], report["periodEnd"]) == (START, END)
    jobs = {row["jobName"]: row for row in report["data"]["jobs"]}
    assert set(jobs) == {"alpha", "beta"}
    assert jobs["alpha"] == {
        "jobId": str(MINE_A),
        "jobName": "alpha",
        "attempts": 4,
        "succeeded": 2,
        "failures": 2,
        "skipped": 1,
        "missed": 4,
        "meanDurationMs": 338,  # (100 + 300 + 50 + 900) / 4 = 337.5
        "maxDurationMs": 900,
    }
    assert jobs["beta"]["failures"] == 1 and jobs["beta"]["missed"] == 1
    assert jobs["beta"]["meanDurationMs"] is None
    assert report["data"]["totals"] == {
        "attempts": 5,
        "succeeded": 2,
        "failures": 3,
        "skipped": 1,
        "missed": 5,
    }
    assert report["data"]["truncated"] is False
    assert "user-2" not in str(report["data"]) and str(THEIRS) not in str(report["data"])


async def test_job_failures_report_lists_the_owners_failures_newest_first(
    db: Database, make_context: ContextFactory
) -> None:
    await _seed(db)
    _, report = await _report(db, make_context, {"type": "jobFailures", "period": "daily"})

    data = report["data"]
    assert data["total"] == 3 and data["truncated"] is False
    assert [row["error"] for row in data["failures"]] == [
        "timed out after 1 s",
        "HTTP 500 from example.com",
        "lease expired",
    ]
    first = data["failures"][0]
    assert first["status"] == "timeout" and first["attempt"] == 2 and first["jobName"] == "alpha"
    assert datetime.fromisoformat(first["scheduledFor"]) == START + timedelta(hours=4)
    assert {row["jobName"]: row["failures"] for row in data["byJob"]} == {"alpha": 2, "beta": 1}
    assert "secret of user-2" not in str(data)


async def test_other_owners_report_sees_only_their_runs(
    db: Database, make_context: ContextFactory
) -> None:
    await _seed(db)
    _, report = await _report(
        db, make_context, {"type": "jobFailures", "period": "daily"}, owner_id="user-2"
    )
    assert [row["error"] for row in report["data"]["failures"]] == ["secret of user-2"]


async def test_a_retry_of_the_same_slot_replaces_its_report(
    db: Database, make_context: ContextFactory
) -> None:
    await _seed(db)
    payload = {"type": "jobRuns", "period": "weekly"}
    job_id = ObjectId()
    _, first = await _report(db, make_context, payload, job_id=job_id)
    _, retry = await _report(db, make_context, payload, job_id=job_id)
    assert retry["_id"] == first["_id"] and retry["runId"] != first["runId"]
    assert await db[REPORTS].count_documents({"jobId": job_id}) == 1

    later = make_context(
        "generateReport", payload, job_id=job_id, scheduled_for=END + timedelta(days=7)
    )
    await generate_report.handle(later, GenerateReportPayload.model_validate(payload))
    assert await db[REPORTS].count_documents({"jobId": job_id}) == 2


async def test_an_empty_period_gives_an_empty_report(
    db: Database, make_context: ContextFactory
) -> None:
    for report_type in ("jobRuns", "jobFailures"):
        _, report = await _report(db, make_context, {"type": report_type, "period": "monthly"})
        assert report["data"].get("jobs", report["data"].get("failures")) == []
