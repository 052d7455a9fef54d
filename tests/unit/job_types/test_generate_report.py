"""generateReport: payload validation and the period bounds in the job's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.job_types.generate_report import (
    GenerateReportPayload,
    ReportPeriod,
    ReportType,
    period_bounds,
)
from tests.unit.job_types.fields import payload_errors

BERLIN = ZoneInfo("Europe/Berlin")


def test_valid_payload() -> None:
    payload = GenerateReportPayload.model_validate({"type": "jobFailures", "period": "weekly"})
    assert payload.report_type is ReportType.JOB_FAILURES
    assert payload.period is ReportPeriod.WEEKLY
    assert payload.model_dump(by_alias=True, mode="json") == {
        "type": "jobFailures",
        "period": "weekly",
    }


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"period": "daily"}, "type", "Field required"),
        ({"type": "jobRuns"}, "period", "Field required"),
        ({"type": "everything", "period": "daily"}, "type", "'jobRuns' or 'jobFailures'"),
        ({"type": "jobRuns", "period": "hourly"}, "period", "'daily', 'weekly' or 'monthly'"),
        ({"type": "jobRuns", "period": "daily", "ownerId": "x"}, "ownerId", "not permitted"),
    ],
)
def test_each_invalid_field_is_named(payload: dict[str, Any], field: str, message: str) -> None:
    errors = payload_errors(GenerateReportPayload, payload)
    assert field in errors, errors
    assert message in errors[field]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_daily_is_one_local_calendar_day() -> None:
    end = _utc(2026, 6, 10, 6, 0)  # 08:00 in Berlin (CEST)
    assert period_bounds(ReportPeriod.DAILY, end, BERLIN) == (_utc(2026, 6, 9, 6, 0), end)


def test_a_day_across_the_spring_change_is_23_hours() -> None:
    end = _utc(2026, 3, 29, 6, 0)  # 08:00 CEST on the day clocks went forward
    start, _ = period_bounds(ReportPeriod.DAILY, end, BERLIN)
    assert start == _utc(2026, 3, 28, 7, 0)  # 08:00 CET the day before
    assert (end - start).total_seconds() == 23 * 3600


def test_a_week_across_the_autumn_change_is_7_days_and_an_hour() -> None:
    end = _utc(2026, 10, 30, 7, 0)  # Friday 08:00 CET
    start, _ = period_bounds(ReportPeriod.WEEKLY, end, BERLIN)
    assert start == _utc(2026, 10, 23, 6, 0)  # Friday 08:00 CEST
    assert (end - start).total_seconds() == 7 * 86400 + 3600


@pytest.mark.parametrize(
    ("end", "start"),
    [
        (_utc(2026, 3, 31, 12), _utc(2026, 2, 28, 12)),  # day clamped to February's length
        (_utc(2024, 3, 30, 12), _utc(2024, 2, 29, 12)),  # leap year
        (_utc(2026, 1, 15, 0), _utc(2025, 12, 15, 0)),  # across the year
    ],
)
def test_monthly_goes_back_one_calendar_month(end: datetime, start: datetime) -> None:
    assert period_bounds(ReportPeriod.MONTHLY, end, ZoneInfo("UTC")) == (start, end)


def test_bounds_are_utc() -> None:
    end = datetime(2026, 6, 10, 8, 0, tzinfo=BERLIN)
    start, stop = period_bounds(ReportPeriod.DAILY, end, BERLIN)
    assert start.tzinfo is UTC and stop.tzinfo is UTC
    assert stop == end
