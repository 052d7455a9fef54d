"""Run history and stored reports as returned to the job's owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.common import ResponseModel
from shared.db import Document
from shared.model import RunDocument, RunStatus, RunTrigger


class RunOut(ResponseModel):
    """One run attempt (or a skipped / missed slot)."""

    id: str
    job_id: str
    scheduled_for: datetime = Field(
        description="The slot (UTC), also for a backfilled one; for run-now and test runs the "
        "request time."
    )
    trigger: RunTrigger = Field(
        description="schedule, manual (run-now), retry, test (outside the job's counters and "
        "status) or backfill (a past slot queued by an admin).",
        examples=["schedule"],
    )
    attempt: int
    status: RunStatus
    not_before: datetime | None = Field(
        description="When a pending run may start at the earliest (a retry's backoff); "
        "null once it has started."
    )
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    error: str | None
    result: dict[str, Any] | None
    worker_id: str | None
    missed_count: int | None = Field(description="Slots a summary `missed` record stands for.")

    @classmethod
    def of(cls, run: RunDocument) -> RunOut:
        """The response body of a stored run."""
        return cls(
            id=str(run.id),
            job_id=str(run.job_id),
            scheduled_for=run.scheduled_for,
            trigger=run.trigger,
            attempt=run.attempt,
            status=run.status,
            not_before=run.not_before if run.status is RunStatus.PENDING else None,
            started_at=run.started_at,
            ended_at=run.ended_at,
            duration_ms=run.duration_ms,
            error=run.error,
            result=run.result,
            worker_id=run.worker_id,
            missed_count=run.missed_count,
        )


class RunPage(ResponseModel):
    """One page of runs, newest first."""

    items: list[RunOut]
    next_cursor: str | None


class ReportOut(ResponseModel):
    """A report stored by a `generateReport` run."""

    id: str
    owner_id: str
    job_id: str
    run_id: str | None
    type: str = Field(examples=["jobRuns"])
    period: str = Field(examples=["daily"])
    period_start: datetime | None
    period_end: datetime | None
    timezone: str | None
    data: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def of(cls, document: Document) -> ReportOut:
        """The response body of a raw `reports` document."""
        run_id = document.get("runId")
        data = document.get("data")
        return cls(
            id=str(document["_id"]),
            owner_id=str(document.get("ownerId", "")),
            job_id=str(document.get("jobId", "")),
            run_id=None if run_id is None else str(run_id),
            type=str(document.get("type", "")),
            period=str(document.get("period", "")),
            period_start=document.get("periodStart"),
            period_end=document.get("periodEnd"),
            timezone=document.get("timezone"),
            data=data if isinstance(data, dict) else {},
            created_at=document.get("createdAt"),
        )


class ReportPage(ResponseModel):
    """One page of reports, newest first."""

    items: list[ReportOut]
    next_cursor: str | None
