"""Pure schedule bounds: `startAt` / `endAt` clip any schedule's slots, `maxRuns` ends a job.

`BoundedSchedule` wraps a cron or interval schedule and keeps only the slots t with
startAt <= t <= endAt; past the last one it raises `NoSlotLeftError`, like a one-off after its
instant. `maxRuns` is not a property of the slots but of the job's history (how many scheduled
slots succeeded, `scheduledSuccessCount`): `runs_left` says whether any may still run.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.one_off import NoSlotLeftError, instant_of
from shared.schedule import MAX_COUNT

if TYPE_CHECKING:
    from shared.job_schedule import SlotSchedule

__all__ = ["BoundedSchedule", "bounded", "next_or_none", "runs_left"]

_TINY = timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class BoundedSchedule:
    """The slots of `inner` within [start_at, end_at] (either bound optional), in UTC."""

    inner: SlotSchedule
    start_at: datetime | None = None
    end_at: datetime | None = None

    @property
    def has_seconds(self) -> bool:
        """As the inner schedule."""
        return self.inner.has_seconds

    def next_after(self, after: datetime) -> datetime:
        """First slot strictly after `after` within the bounds; NoSlotLeftError past `end_at`."""
        if self.start_at is not None and after < self.start_at:
            after = max(after, self.start_at - _TINY)
        slot = self.inner.next_after(after)
        if self.end_at is not None and slot > self.end_at:
            raise NoSlotLeftError("the schedule has no slot before its endAt")
        return slot

    def next_times(self, after: datetime, count: int) -> list[datetime]:
        """Up to `count` slots strictly after `after` within the bounds (fewer near `end_at`)."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}")
        times: list[datetime] = []
        moment = after
        for _ in range(count):
            slot = next_or_none(self, moment)
            if slot is None:
                break
            times.append(slot)
            moment = slot
        return times

    def slots_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """At most `limit` slots in [start, end] and within the bounds, ascending."""
        low = start if self.start_at is None else max(start, self.start_at)
        high = end if self.end_at is None else min(end, self.end_at)
        if limit < 0:
            raise ValueError("limit must not be negative")
        if high < low:
            return []
        return self.inner.slots_between(low, high, limit)

    def min_interval(self, after: datetime, samples: int = 500) -> timedelta:
        """As the inner schedule (bounds only cut slots off)."""
        return self.inner.min_interval(after, samples)


def bounded(
    schedule: SlotSchedule, start_at: datetime | None, end_at: datetime | None
) -> SlotSchedule:
    """`schedule` clipped to the bounds (itself when there are none)."""
    if start_at is None and end_at is None:
        return schedule
    return BoundedSchedule(
        schedule,
        None if start_at is None else instant_of(start_at, "startAt"),
        None if end_at is None else instant_of(end_at, "endAt"),
    )


def next_or_none(schedule: SlotSchedule, after: datetime) -> datetime | None:
    """The first slot strictly after `after`, or None when the schedule has none left."""
    try:
        return schedule.next_after(after)
    except NoSlotLeftError:
        return None


def runs_left(max_runs: int | None, succeeded: int) -> bool:
    """Whether a job that had `succeeded` successful scheduled slots may run another one."""
    return max_runs is None or succeeded < max_runs
