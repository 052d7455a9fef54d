"""The next fire times of a parsed schedule, as `/preview` and `/jobs/dry-run` answer them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from api.errors import field_error, invalid
from api.schemas.catalog import FireTime, PreviewOut
from shared.bounds import BoundedSchedule, bounded
from shared.interval import IntervalSchedule
from shared.job_schedule import SlotSchedule
from shared.one_off import OneOffSchedule
from shared.schedule import Schedule, parse_timezone


def schedule_preview(
    schedule: SlotSchedule,
    timezone: str,
    now: datetime,
    count: int,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    max_runs: int | None = None,
    starts_at: Callable[[datetime], datetime | None] = lambda slot: slot,
) -> PreviewOut:
    """The next `count` slots after `now` within the bounds (at most `max_runs`); 422 on the
    schedule's field past the calendar. `starts_at`: when a slot starts (its jittered start)."""
    zone = parse_timezone(timezone)
    inner = schedule.inner if isinstance(schedule, BoundedSchedule) else schedule
    interval = inner if isinstance(inner, IntervalSchedule) else None
    one_off = inner if isinstance(inner, OneOffSchedule) else None
    try:
        times = bounded(inner, start_at, end_at).next_times(now, min(count, max_runs or count))
    except ValueError as error:  # runs past the supported calendar
        raise invalid([field_error("every" if interval else "cron", str(error))]) from None
    return PreviewOut(
        cron=inner.cron if isinstance(inner, Schedule) else None,
        every=interval.every if interval else None,
        run_at=one_off.at if one_off else None,
        anchor_at=interval.anchor if interval else None,
        start_at=start_at,
        end_at=end_at,
        timezone=zone.key,
        fire_times=[
            FireTime(utc=time, local=time.astimezone(zone), starts_at=starts_at(time))
            for time in times
        ],
    )
