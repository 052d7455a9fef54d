"""A job's schedule, whichever kind it is: the slot interface cron and interval both implement.

A job has exactly one schedule kind, named by its field: `cron` (wall-clock times in the job's
zone, `shared.schedule.Schedule`) or `every` (elapsed time from `anchorAt`,
`shared.interval.IntervalSchedule`) or `runAt` (one instant, `shared.one_off.OneOffSchedule`).
`SCHEDULE_KINDS` lists them in the order they are checked. `startAt` / `endAt` clip cron and
interval slots (`shared.bounds`); a schedule past its last slot raises `NoSlotLeftError`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.bounds import bounded
from shared.interval import IntervalSchedule
from shared.one_off import OneOffSchedule
from shared.schedule import Schedule, ScheduleError, parse_timezone

__all__ = [
    "SCHEDULE_KINDS",
    "MissingScheduleError",
    "SlotSchedule",
    "exactly_one_kind",
    "schedule_of",
]

# The fields naming a schedule kind; a job sets exactly one of them.
SCHEDULE_KINDS: Final = ("cron", "every", "runAt")


class SlotSchedule(Protocol):
    """What the scheduler, the API and the repository ask of any schedule (pure, UTC)."""

    @property
    def has_seconds(self) -> bool:
        """Whether slots may fall off whole minutes (admin-only below the minimum interval)."""
        ...

    def next_after(self, after: datetime) -> datetime:
        """First slot strictly after `after`; NoSlotLeftError when none is left."""
        ...

    def next_times(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` slots strictly after `after` (fewer where the schedule ends)."""
        ...

    def slots_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """At most `limit` slots in [start, end], ascending."""
        ...

    def min_interval(self, after: datetime, samples: int = 500) -> timedelta:
        """Smallest gap between consecutive slots."""
        ...


class MissingScheduleError(ScheduleError):
    """A job without exactly one schedule kind; `field` names the offending field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def exactly_one_kind(given: dict[str, object]) -> str:
    """The one schedule kind set in `given` (kind -> value or None); MissingScheduleError else.

    None set: the error names the first kind (`cron`); several: the last one set.
    """
    present = [kind for kind in SCHEDULE_KINDS if given.get(kind) is not None]
    if len(present) == 1:
        return present[0]
    if not present:
        names = " or ".join(f"`{kind}`" for kind in SCHEDULE_KINDS)
        raise MissingScheduleError(f"a job needs a schedule: set {names}", SCHEDULE_KINDS[0])
    others = ", ".join(f"`{kind}`" for kind in present)
    raise MissingScheduleError(f"set only one of {others}", present[-1])


def schedule_of(
    *,
    cron: str | None,
    every: str | None,
    anchor_at: datetime | None,
    timezone: str = "UTC",
    run_at: datetime | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> SlotSchedule:
    """The schedule of a job's fields, clipped to its bounds; ScheduleError (with `field`)
    when unusable."""
    kind = exactly_one_kind({"cron": cron, "every": every, "runAt": run_at})
    if kind == "runAt":
        assert run_at is not None
        parse_timezone(timezone)  # the zone still governs how the slot is shown
        return OneOffSchedule.parse(run_at)
    if kind == "every":
        assert every is not None
        if anchor_at is None:
            raise MissingScheduleError("an interval needs its anchor", "anchorAt")
        parse_timezone(timezone)
        return bounded(IntervalSchedule.parse(every, anchor_at), start_at, end_at)
    assert cron is not None
    return bounded(Schedule.parse(cron, timezone), start_at, end_at)
