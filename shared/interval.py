"""Pure interval schedules: an ISO 8601 duration ("PT90M") repeated from an anchor instant.

Slots are elapsed time: anchor + k x every (k = 0, 1, 2, ...) in UTC. Unlike a cron, an
interval never looks at a wall clock, so daylight-saving changes do not move its slots; the
job's time zone only governs how they are shown. Days and weeks are exact multiples of 24 h
(`P1D` is 24 hours, not "the same wall time tomorrow": use a cron for that). Months and years
are refused because their length varies.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count as counting
from itertools import islice
from typing import Final, Self

from shared.schedule import MAX_COUNT, ScheduleError

__all__ = [
    "EVERY_MAX_LENGTH",
    "MAX_EVERY",
    "IntervalSchedule",
    "InvalidIntervalError",
    "anchor_of",
    "parse_every",
]

EVERY_MAX_LENGTH: Final = 40
# Longer intervals are refused: a year of slots is the most a user plans with elapsed time.
MAX_EVERY: Final = timedelta(days=366)
_SECOND: Final = timedelta(seconds=1)
_UNIT_SECONDS: Final = {"W": 7 * 86_400, "D": 86_400, "H": 3600, "M": 60, "S": 1}
_DURATION: Final = re.compile(
    r"P(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?(?:T(?=\d)(?:(?P<H>\d+)H)?(?:(?P<M>\d+)M)?(?:(?P<S>\d+)S)?)?",
    re.ASCII,
)
_CALENDAR_UNIT: Final = re.compile(r"P(?:\d+W)?(?:\d+D)?[^T]*?\d+[YM]", re.ASCII)


class InvalidIntervalError(ScheduleError):
    """The `every` duration is invalid (field == "every")."""

    field = "every"


def parse_every(text: str) -> timedelta:
    """The length of an ISO 8601 duration such as "PT90M", "PT36H", "P1D" or "P1W".

    Accepted designators: W, D (before T); H, M, S (after T); whole numbers, upper case (lower
    case is accepted and means the same). Refused, each with a message fit for an end user:
    months and years (their length varies), fractions, signs, zero, anything above MAX_EVERY.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidIntervalError("must be an ISO 8601 duration such as 'PT90M' or 'P1D'")
    value = text.strip().upper()
    if len(value) > EVERY_MAX_LENGTH:
        raise InvalidIntervalError(f"is too long (max {EVERY_MAX_LENGTH} characters)")
    if value.startswith(("-", "+")):
        raise InvalidIntervalError("must be positive (no sign)")
    if _CALENDAR_UNIT.match(value):
        raise InvalidIntervalError(
            "months and years vary in length and are not allowed; use days or weeks "
            "(e.g. 'P30D'), minutes are written after T ('PT1M')"
        )
    if re.search(r"[.,]", value):
        raise InvalidIntervalError("fractions are not allowed; use a smaller unit ('PT90M')")
    match = _DURATION.fullmatch(value)
    if match is None or value in {"P", "PT"}:
        raise InvalidIntervalError(
            f"{text.strip()!r} is not an ISO 8601 duration such as 'PT90M', 'PT36H', 'P1D', 'P1W'"
        )
    amounts = match.groupdict().items()
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for unit, amount in amounts if amount)
    if seconds == 0:
        raise InvalidIntervalError("must be longer than zero")
    if seconds > MAX_EVERY.total_seconds():  # before timedelta, which overflows on huge numbers
        raise InvalidIntervalError(f"must be at most {MAX_EVERY.days} days")
    return timedelta(seconds=seconds)


def anchor_of(moment: datetime) -> datetime:
    """The anchor an instant gives (creation or schedule change): UTC, whole seconds."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("anchor must be a timezone-aware datetime")
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclasses.dataclass(frozen=True)
class IntervalSchedule:
    """Slots anchor + k x every (k >= 0), whole seconds, in UTC; build with `parse`.

    Implements the same slot interface as the cron `Schedule` (next_after, next_times,
    slots_between, min_interval), so the scheduler and the API treat both alike.
    """

    every: str
    anchor: datetime
    length: timedelta

    @classmethod
    def parse(cls, every: str, anchor: datetime) -> Self:
        """Validate the duration; raise InvalidIntervalError (field "every")."""
        return cls(every.strip().upper(), anchor_of(anchor), parse_every(every))

    @property
    def has_seconds(self) -> bool:
        """Whether the interval is not a whole number of minutes (admins only, like a
        seconds-field cron firing off the minute)."""
        return self.length % timedelta(minutes=1) != timedelta(0)

    def next_after(self, after: datetime) -> datetime:
        """First slot strictly after `after` (aware, any zone), in UTC."""
        moment = _to_utc(after, "after")
        if moment < self.anchor:
            return self.anchor
        return self._slot((moment - self.anchor) // self.length + 1)

    def next_times(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` (1..1000) slots strictly after `after`, ascending, in UTC."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}")
        first = self.next_after(after)
        return list(islice(self._from(first), count))

    def slots_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """At most `limit` slots t with start <= t <= end, ascending, in UTC."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        first, last = _to_utc(start, "start"), _to_utc(end, "end")
        if limit == 0 or last < first:
            return []
        slots: list[datetime] = []
        for slot in self._from(self.next_after(first - timedelta(microseconds=1))):
            if slot > last or len(slots) == limit:
                break
            slots.append(slot)
        return slots

    def min_interval(self, after: datetime, samples: int = 500) -> timedelta:
        """The gap between consecutive slots: always `every`."""
        if samples < 2:
            raise ValueError("samples must be at least 2")
        return self.length

    def _slot(self, index: int) -> datetime:
        try:
            return self.anchor + self.length * index
        except OverflowError as exc:
            raise ValueError("no slot within the supported calendar (years 1-9999)") from exc

    def _from(self, first: datetime) -> Iterator[datetime]:
        start = (first - self.anchor) // self.length
        for index in counting(start):
            yield self._slot(index)


def _to_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)
