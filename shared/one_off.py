"""Pure one-off schedules: a job that runs once, at `runAt`.

The single slot is an instant (UTC, whole seconds), so no wall clock and no daylight-saving
change can move it; the job's time zone only governs how it is shown. After it there is no
slot: asking for one raises `NoSlotLeftError`, which callers read as "the schedule is done".
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Self

from shared.schedule import MAX_COUNT, ScheduleError

__all__ = ["InvalidRunAtError", "NoSlotLeftError", "OneOffSchedule", "instant_of"]


class NoSlotLeftError(ValueError):
    """The schedule has no slot after the instant asked about (bounds, `runAt` passed)."""


class InvalidRunAtError(ScheduleError):
    """The `runAt` instant is unusable (field == "runAt")."""

    field = "runAt"


def instant_of(moment: datetime, name: str = "instant") -> datetime:
    """An aware instant in UTC, whole seconds (slot keys are to the second)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclasses.dataclass(frozen=True)
class OneOffSchedule:
    """Exactly one slot, `at`; the same slot interface as cron and interval schedules."""

    at: datetime

    @classmethod
    def parse(cls, run_at: datetime) -> Self:
        """The one-off of an aware instant; InvalidRunAtError (field "runAt") if naive."""
        try:
            return cls(instant_of(run_at, "runAt"))
        except ValueError as error:
            raise InvalidRunAtError(
                "must carry a UTC offset (e.g. 2026-11-23T07:00:00Z)"
            ) from error

    @property
    def has_seconds(self) -> bool:
        """A single run is no load concern: any whole second is allowed for everybody."""
        return False

    def next_after(self, after: datetime) -> datetime:
        """The slot if it is strictly after `after`; NoSlotLeftError otherwise."""
        if _before(after, self.at):
            return self.at
        raise NoSlotLeftError("a one-off job has no slot after its runAt")

    def next_times(self, after: datetime, count: int) -> list[datetime]:
        """`[runAt]` if it is after `after`, else empty (never more than one)."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}")
        return [self.at] if _before(after, self.at) else []

    def slots_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """`[runAt]` if start <= runAt <= end (and limit > 0), else empty."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        inside = _aware(start, "start") <= self.at <= _aware(end, "end")
        return [self.at] if inside and limit else []

    def min_interval(self, after: datetime, samples: int = 500) -> timedelta:
        """No second slot: the largest gap there is (never below any minimum interval)."""
        if samples < 2:
            raise ValueError("samples must be at least 2")
        return timedelta.max


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment


def _before(after: datetime, slot: datetime) -> bool:
    return _aware(after, "after") < slot
