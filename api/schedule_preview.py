"""The next fire times of a parsed schedule, as `/preview` and `/jobs/dry-run` answer them."""

from __future__ import annotations

from datetime import datetime

from api.errors import field_error, invalid
from api.schemas.catalog import FireTime, PreviewOut
from shared.interval import IntervalSchedule
from shared.job_schedule import SlotSchedule
from shared.schedule import Schedule, parse_timezone


def schedule_preview(
    schedule: SlotSchedule, timezone: str, now: datetime, count: int
) -> PreviewOut:
    """The next `count` slots after `now`; 422 on the schedule's field past the calendar."""
    zone = parse_timezone(timezone)
    interval = schedule if isinstance(schedule, IntervalSchedule) else None
    try:
        times = schedule.next_times(now, count)
    except ValueError as error:  # runs past the supported calendar
        raise invalid([field_error("every" if interval else "cron", str(error))]) from None
    return PreviewOut(
        cron=schedule.cron if isinstance(schedule, Schedule) else None,
        every=interval.every if interval else None,
        anchor_at=interval.anchor if interval else None,
        timezone=zone.key,
        fire_times=[FireTime(utc=time, local=time.astimezone(zone)) for time in times],
    )
