"""`generateReport`: a run-statistics report over the owner's jobs for the period just ended."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.registry import JobType
from shared.run_identity import RunIdentity, utc_text
from shared.settings import Settings


class ReportType(StrEnum):
    """What the report counts."""

    JOB_RUNS = "jobRuns"
    JOB_FAILURES = "jobFailures"


class ReportPeriod(StrEnum):
    """How far back the report reaches from the run's scheduled time."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class GenerateReportPayload(BaseModel):
    """The report type and its period."""

    # Only the documented (alias) names: a Python name such as `sleep_seconds` is refused.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)

    report_type: ReportType = Field(
        alias="type",
        description="jobRuns: per-job counts and durations; jobFailures: the failed runs.",
    )
    period: ReportPeriod = Field(
        description="daily, weekly or monthly: the period ending at the run's scheduled time, "
        "measured in the job's time zone (a day is a calendar day, so 23 or 25 hours across DST)."
    )


def period_bounds(period: ReportPeriod, end: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC: `end` minus one local day, week or month (day clamped to the month)."""
    local_end = end.astimezone(zone)
    wall = local_end.replace(tzinfo=None)
    if period is ReportPeriod.DAILY:
        wall_start = wall - timedelta(days=1)
    elif period is ReportPeriod.WEEKLY:
        wall_start = wall - timedelta(days=7)
    else:
        year, month = (wall.year, wall.month - 1) if wall.month > 1 else (wall.year - 1, 12)
        day = min(wall.day, calendar.monthrange(year, month)[1])
        wall_start = wall.replace(year=year, month=month, day=day)
    start = wall_start.replace(tzinfo=zone).astimezone(UTC)
    return start, local_end.astimezone(UTC)


def preview(
    identity: RunIdentity, payload: GenerateReportPayload, settings: Settings
) -> dict[str, Any]:
    """The report a run at its slot would store: its type and the period it covers."""
    start, end = period_bounds(payload.period, identity.scheduled_for, ZoneInfo(identity.timezone))
    return {
        "kind": "generateReport",
        "reportType": payload.report_type.value,
        "period": payload.period.value,
        "periodStart": utc_text(start),
        "periodEnd": utc_text(end),
        "timezone": identity.timezone,
    }


JOB_TYPE = JobType(
    name="generateReport",
    payload_model=GenerateReportPayload,
    description="Builds a report of the owner's job runs for the period ending at the run's "
    "scheduled time and stores it (GET /api/cron/jobs/{id}/reports).",
    preview=preview,
)
