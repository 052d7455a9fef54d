"""The shortest gap between two fire times of a schedule, computed (not sampled).

Two parts, both exact:
- the wall-clock pattern: a cron fires at every (matching day) x (matching time of day), so the
  shortest wall gap is the smaller of the shortest step within a day and the step across the
  shortest run of days (`g` days minus the span of the times of day);
- every change of the zone's UTC offset (DST and rule changes) within HORIZON_YEARS: the fires
  just before and after each transition, computed by the schedule engine itself, so a gap the
  jump shortens (02:59:59 skipped to 03:00:00 one second after 01:59:59) is seen wherever it is.
HORIZON_YEARS covers every combination of weekday, date and leap year a yearly rule can land on
(the calendar repeats every 28 years between 1901 and 2099).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

from croniter import croniter

from shared.schedule import Schedule

HORIZON_YEARS: Final = 30
DAY_SECONDS: Final = 86_400
# Offsets are probed this often; transitions are months apart (never two within 12 hours).
_PROBE_SECONDS: Final = 12 * 3600
# Matching days looked at for the shortest run of days (it is 1 day for almost every cron, so
# the walk stops at once); 400 matching days span 8 years of a weekly pattern, 33 of a monthly
# one and the whole calendar of a yearly one, so every day-of-month/weekday combination shows.
_MAX_DAY_STEPS: Final = 400
_RANGES: Final = ((0, 59), (0, 59), (0, 23))


def shortest_gap(schedule: Schedule, after: datetime) -> timedelta:
    """The smallest time between consecutive fire instants of `schedule` from `after` on."""
    gap = wall_pattern_gap(schedule)
    for transition in offset_transitions(schedule.zone.key, after.astimezone(UTC).year):
        if transition <= after:
            continue
        before = schedule.fire_before(transition)
        if before is None:
            continue
        first = schedule.next_after(before)
        second = schedule.next_after(first)
        gap = min(gap, first - before, second - first)
    return gap


def wall_pattern_gap(schedule: Schedule) -> timedelta:
    """The shortest gap of the cron on a wall clock without offset changes."""
    seconds, minutes, hours, dom, month, dow = schedule.explicit_fields
    times = sorted(
        h * 3600 + m * 60 + s
        for h in _values(hours, *_RANGES[2])
        for m in _values(minutes, *_RANGES[1])
        for s in _values(seconds, *_RANGES[0])
    )
    within = min((b - a for a, b in pairwise(times)), default=DAY_SECONDS * 366 * 8)
    span = times[-1] - times[0]
    if DAY_SECONDS - span >= within:  # even consecutive matching days cannot do better
        return timedelta(seconds=within)
    across = _shortest_day_step(f"0 0 {dom} {month} {dow}") * DAY_SECONDS - span
    return timedelta(seconds=min(within, across))


def _values(field: str, low: int, high: int) -> list[int]:
    return list(range(low, high + 1)) if field == "*" else [int(v) for v in field.split(",")]


@lru_cache(maxsize=256)
def _shortest_day_step(days_expr: str) -> int:
    """Fewest days between two consecutive matching days (croniter's day-of-month/week rules)."""
    walk = croniter(days_expr, datetime(2000, 1, 1))
    shortest = 366 * 8
    try:
        previous: datetime = walk.get_next(datetime)
        for _ in range(_MAX_DAY_STEPS):
            current: datetime = walk.get_next(datetime)
            shortest = min(shortest, (current - previous).days)
            if shortest == 1:
                break
            previous = current
    except (ValueError, OverflowError):  # walked off the calendar (e.g. Feb 29 only)
        pass
    return shortest


@lru_cache(maxsize=256)
def offset_transitions(zone_name: str, from_year: int) -> tuple[datetime, ...]:
    """Instants (UTC) at which the zone's UTC offset changes, from `from_year` for the horizon."""
    zone = ZoneInfo(zone_name)
    start = int(datetime(from_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(from_year + HORIZON_YEARS, 1, 1, tzinfo=UTC).timestamp())
    found = []
    previous = _offset(start, zone)
    for probe in range(start + _PROBE_SECONDS, end + 1, _PROBE_SECONDS):
        current = _offset(probe, zone)
        if current != previous:
            found.append(_first_with_offset(probe - _PROBE_SECONDS, probe, current, zone))
            previous = current
    return tuple(found)


def _offset(timestamp: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(zone).utcoffset()


def _first_with_offset(low: int, high: int, offset: timedelta | None, zone: ZoneInfo) -> datetime:
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, zone) == offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
