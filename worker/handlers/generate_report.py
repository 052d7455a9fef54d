"""Handler of `generateReport`: aggregate the owner's runs over the period and store a report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from shared.db import REPORTS, RUNS, Collection, Document
from shared.job_types.generate_report import GenerateReportPayload, ReportType, period_bounds
from shared.model import RunStatus
from shared.schedule import ScheduleError, parse_timezone
from worker.handlers.context import HandlerError, RunContext

MAX_JOBS_IN_REPORT = 1000
MAX_FAILURES_IN_REPORT = 200
MAX_ERROR_LENGTH = 500
FAILED_STATUSES = [RunStatus.FAILED.value, RunStatus.TIMEOUT.value, RunStatus.ABANDONED.value]
EXECUTED_STATUSES = [RunStatus.SUCCEEDED.value, *FAILED_STATUSES]


async def handle(ctx: RunContext, payload: GenerateReportPayload) -> dict[str, Any] | None:
    """Compute the report for [scheduledFor - period, scheduledFor) and upsert it per slot."""
    try:
        zone = parse_timezone(ctx.job.timezone)
    except ScheduleError as error:
        raise HandlerError(f"job time zone: {error.message}") from None
    start, end = period_bounds(payload.period, ctx.scheduled_for, zone)
    # The owner filter is what keeps one user's report free of anybody else's runs.
    match: Document = {"ownerId": ctx.job.owner_id, "scheduledFor": {"$gte": start, "$lt": end}}
    runs = ctx.db[RUNS]
    if payload.report_type is ReportType.JOB_RUNS:
        data = await job_runs(runs, match)
    else:
        data = await job_failures(runs, match)
    report = {
        "ownerId": ctx.job.owner_id,
        "jobId": ctx.job.id,
        "runId": ObjectId(ctx.run_id) if ObjectId.is_valid(ctx.run_id) else ctx.run_id,
        "type": payload.report_type.value,
        "period": payload.period.value,
        "periodStart": start,
        "periodEnd": end,
        "timezone": ctx.job.timezone,
        "data": data,
        "createdAt": datetime.now(UTC),
    }
    # A retry of the same slot replaces its earlier report instead of adding a second one.
    identity = {"jobId": ctx.job.id, "type": report["type"], "period": report["period"]}
    stored = await ctx.db[REPORTS].find_one_and_replace(
        {**identity, "periodEnd": end}, report, upsert=True, return_document=ReturnDocument.AFTER
    )
    if stored is None:  # only if the upsert lost a race with a delete; nothing to point at
        raise HandlerError("report could not be stored")
    ctx.log.info("generate_report.stored", report_id=str(stored["_id"]), type=report["type"])
    return {"reportId": str(stored["_id"])}


def _count_when(statuses: list[str]) -> Document:
    return {"$sum": {"$cond": [{"$in": ["$status", statuses]}, 1, 0]}}


async def job_runs(runs: Collection, match: Document) -> Document:
    """Per job: attempts, successes, failures, skipped and missed slots, mean/max duration."""
    pipeline: list[Document] = [
        {"$match": match},
        {
            "$group": {
                "_id": "$jobId",
                "jobName": {"$max": "$jobName"},
                "attempts": _count_when(EXECUTED_STATUSES),
                "succeeded": _count_when([RunStatus.SUCCEEDED.value]),
                "failures": _count_when(FAILED_STATUSES),
                "skipped": _count_when([RunStatus.SKIPPED.value]),
                # A summary record stands for `missedCount` slots.
                "missed": {
                    "$sum": {
                        "$cond": [
                            {"$eq": ["$status", RunStatus.MISSED.value]},
                            {"$ifNull": ["$missedCount", 1]},
                            0,
                        ]
                    }
                },
                "meanDurationMs": {"$avg": "$durationMs"},
                "maxDurationMs": {"$max": "$durationMs"},
            }
        },
        {"$sort": {"attempts": -1, "_id": 1}},
        {"$limit": MAX_JOBS_IN_REPORT},
    ]
    rows = await (await runs.aggregate(pipeline)).to_list()
    jobs = [_job_row(row) for row in rows]
    totals = {
        key: sum(job[key] for job in jobs)
        for key in ("attempts", "succeeded", "failures", "skipped", "missed")
    }
    return {"jobs": jobs, "totals": totals, "truncated": len(rows) >= MAX_JOBS_IN_REPORT}


def _job_row(row: Document) -> Document:
    mean = row.get("meanDurationMs")
    return {
        "jobId": str(row["_id"]),
        "jobName": row.get("jobName") or "",
        "attempts": row["attempts"],
        "succeeded": row["succeeded"],
        "failures": row["failures"],
        "skipped": row["skipped"],
        "missed": row["missed"],
        "meanDurationMs": round(mean) if isinstance(mean, int | float) else None,
        "maxDurationMs": row.get("maxDurationMs"),
    }


async def job_failures(runs: Collection, match: Document) -> Document:
    """The newest failed, timed-out or abandoned runs (capped) and failure counts per job."""
    pipeline: list[Document] = [
        {"$match": {**match, "status": {"$in": FAILED_STATUSES}}},
        {
            "$facet": {
                "failures": [
                    {"$sort": {"scheduledFor": -1, "_id": -1}},
                    {"$limit": MAX_FAILURES_IN_REPORT},
                    {
                        "$project": {
                            "jobId": 1,
                            "jobName": 1,
                            "scheduledFor": 1,
                            "attempt": 1,
                            "status": 1,
                            "error": 1,
                            "durationMs": 1,
                        }
                    },
                ],
                "byJob": [
                    {
                        "$group": {
                            "_id": "$jobId",
                            "jobName": {"$max": "$jobName"},
                            "failures": {"$sum": 1},
                        }
                    },
                    {"$sort": {"failures": -1, "_id": 1}},
                    {"$limit": MAX_JOBS_IN_REPORT},
                ],
                "total": [{"$count": "count"}],
            }
        },
    ]
    result = (await (await runs.aggregate(pipeline)).to_list())[0]
    total = result["total"][0]["count"] if result["total"] else 0
    return {
        "total": total,
        "truncated": total > len(result["failures"]),
        "failures": [_failure_row(row) for row in result["failures"]],
        "byJob": [
            {
                "jobId": str(row["_id"]),
                "jobName": row.get("jobName") or "",
                "failures": row["failures"],
            }
            for row in result["byJob"]
        ],
    }


def _failure_row(row: Document) -> Document:
    scheduled = row.get("scheduledFor")
    return {
        "runId": str(row["_id"]),
        "jobId": str(row.get("jobId")),
        "jobName": row.get("jobName") or "",
        "scheduledFor": scheduled.isoformat() if isinstance(scheduled, datetime) else None,
        "attempt": row.get("attempt"),
        "status": row.get("status"),
        "error": (row.get("error") or "")[:MAX_ERROR_LENGTH],
        "durationMs": row.get("durationMs"),
    }
