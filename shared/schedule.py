"""Pure, timezone-aware cron schedule engine: validation, fire times and DST handling."""

import dataclasses
import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice, pairwise
from typing import Self

from croniter import CroniterBadDateError, croniter

from shared.cron_syntax import CronSyntaxError, parse_cron

__all__ = [
    "MAX_COUNT",
    "InvalidCronError",
    "InvalidTimezoneError",
    "Schedule",
    "ScheduleError",
    "parse_timezone",
]

MAX_COUNT = 1000
MAX_TIMEZONE_LENGTH = 64
_SECOND = timedelta(seconds=1)
_ZERO = timedelta(0)
_TZ_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)
# Names zoneinfo may list that are not IANA zones (or use leap seconds, which cron must not see).
_NOT_IANA = frozenset({"localtime", "posixrules", "Factory"})
# Bounds the restarts needed to get past one DST gap; a correct seed needs a single one.
_MAX_RESTARTS = 3
# Any fixed start works for the probe: a valid expression fires within 8 years (Feb 29).
_PROBE_START = datetime(2001, 1, 1)
# Everything croniter or datetime arithmetic can raise on odd input.
_LIBRARY_ERRORS = (ValueError, TypeError, LookupError, ArithmeticError)


class ScheduleError(ValueError):
    """Invalid cron expression or timezone; message fit to show an end user."""

    field: str = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCronError(ScheduleError):
    """The cron expression is invalid (field == "cron")."""

    field = "cron"


class InvalidTimezoneError(ScheduleError):
    """The time zone is not an IANA zone name (field == "timezone")."""

    field = "timezone"


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    names = zoneinfo.available_timezones()
    return frozenset(
        name
        for name in names
        if name not in _NOT_IANA and not name.startswith(("posix/", "right/"))
    )


def parse_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the zone for an IANA name such as "Europe/Berlin"; raise InvalidTimezoneError."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidTimezoneError("time zone must not be empty")
    name = name.strip()
    if len(name) > MAX_TIMEZONE_LENGTH:
        raise InvalidTimezoneError(
            f"time zone name is too long (max {MAX_TIMEZONE_LENGTH} characters)"
        )
    problem = f"{name!r} is not an IANA time zone (e.g. 'Europe/Berlin')"
    if not _TZ_NAME.fullmatch(name) or name not in _iana_names():
        raise InvalidTimezoneError(problem)
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, LookupError, OSError) as exc:
        raise InvalidTimezoneError(problem) from exc


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A cron expression evaluated on the local wall clock of an IANA zone.

    DST rules: a wall-clock time skipped by a spring-forward gap fires once, at the first
    instant after the gap (all matching times inside one gap collapse into that instant).
    A wall-clock time that occurs twice at a fall-back fires once, at its first occurrence;
    the repeated stretch does not fire again. Fire instants are strictly increasing, whole
    seconds, returned in UTC. Build instances with `Schedule.parse`.
    """

    cron: str
    timezone: str
    has_seconds: bool
    _expr: str = dataclasses.field(init=False, repr=False, compare=False)
    _zone: zoneinfo.ZoneInfo = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            parsed = parse_cron(self.cron)
        except CronSyntaxError as exc:
            raise InvalidCronError(str(exc)) from None
        if parsed.has_seconds != self.has_seconds:
            raise ValueError("has_seconds does not match the number of cron fields")
        object.__setattr__(self, "_expr", parsed.croniter_expr)
        object.__setattr__(self, "_zone", parse_timezone(self.timezone))

    @classmethod
    def parse(cls, cron: str, timezone: str = "UTC") -> Self:
        """Validate both inputs; raise InvalidCronError or InvalidTimezoneError, nothing else."""
        try:
            parsed = parse_cron(cron)
        except CronSyntaxError as exc:
            raise InvalidCronError(str(exc)) from None
        schedule = cls(parsed.text, parse_timezone(timezone).key, parsed.has_seconds)
        try:
            next(schedule._walls(_PROBE_START))
        except _LIBRARY_ERRORS as exc:
            raise InvalidCronError(f"{parsed.text!r} never fires or cannot be evaluated") from exc
        return schedule

    def next_after(self, after: datetime) -> datetime:
        """First fire instant strictly after `after` (aware, any zone), in UTC."""
        return next(self._fires(_to_utc(after, "after")))

    def next_times(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` (1..1000) fire instants strictly after `after`, ascending, in UTC."""
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be between 1 and {MAX_COUNT}")
        return list(islice(self._fires(_to_utc(after, "after")), count))

    def slots_between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """At most `limit` fire instants t with start <= t <= end, ascending, in UTC."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        first, last = _to_utc(start, "start"), _to_utc(end, "end")
        if limit == 0 or last < first:
            return []
        # Fire instants are whole seconds, so "t >= first" is "t > ceil(first) - 1s".
        bound = first.replace(microsecond=0) - (_SECOND if first.microsecond == 0 else _ZERO)
        slots: list[datetime] = []
        for fire in self._fires(bound):
            if fire > last or len(slots) == limit:
                break
            slots.append(fire)
        return slots

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The time zone the cron is evaluated in."""
        return self._zone

    @property
    def explicit_fields(self) -> list[str]:
        """The fields as explicit value lists (`*` or `1,5,9`), seconds first (`0` if absent)."""
        fields = self._expr.split()
        return fields if self.has_seconds else ["0", *fields]

    def fire_before(self, before: datetime) -> datetime | None:
        """Last fire instant strictly before `before` (aware), in UTC; None if there is none."""
        bound = _to_utc(before, "before")
        # Seed just after the wall time in force right before `bound` (before a DST jump).
        seed = (bound - _SECOND).astimezone(self._zone).replace(tzinfo=None) + _SECOND
        try:
            walls = croniter(self._expr, seed, second_at_beginning=self.has_seconds)
            for _ in range(_MAX_RESTARTS + 2):  # a wall inside a later fold maps too late
                fire = _wall_to_utc(walls.get_prev(datetime), self._zone)
                if fire < bound:
                    return fire
        except (CroniterBadDateError, OverflowError, ValueError):
            return None
        return None

    def min_interval(self, after: datetime, samples: int = 500) -> timedelta:
        """Smallest gap between consecutive fire instants among the next `samples` (>= 2)."""
        if samples < 2:
            raise ValueError("samples must be at least 2")
        fires = islice(self._fires(_to_utc(after, "after")), samples)
        return min(later - earlier for earlier, later in pairwise(fires))

    def _walls(self, seed: datetime) -> Iterator[datetime]:
        """Matching naive wall-clock times strictly after the naive `seed`."""
        walls = croniter(self._expr, seed, second_at_beginning=self.has_seconds)
        while True:
            yield walls.get_next(datetime)

    def _fires(self, after: datetime) -> Iterator[datetime]:
        """Fire instants strictly after the UTC instant `after`, ascending."""
        bound = after.replace(microsecond=0)  # fires are whole seconds
        try:
            walls = self._walls(_seed_wall(bound, self._zone))
            while True:
                for _ in range(_MAX_RESTARTS):
                    fire = _wall_to_utc(next(walls), self._zone)
                    if fire > bound:
                        break
                    # More wall times from the DST gap that just fired: resume after the gap.
                    walls = self._walls(_seed_wall(bound, self._zone))
                else:
                    raise RuntimeError(f"schedule {self.cron!r} did not advance past {bound}")
                yield fire
                bound = fire
        except (CroniterBadDateError, OverflowError) as exc:
            raise ValueError("no fire time within the supported calendar (years 1-9999)") from exc


def _to_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def _wall_to_utc(wall: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Map a naive local wall time to its fire instant under the DST rules."""
    fire = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: first of a repeated time
    if fire.astimezone(zone).replace(tzinfo=None) == wall:
        return fire
    # The wall time falls in a gap: fold=0 and fold=1 land on either side of the jump.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(min(fire, other), max(fire, other), zone)


def _seed_wall(bound: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Naive wall time to search after so that the first match maps to an instant > bound."""
    local = bound.astimezone(zone)
    wall = local.replace(tzinfo=None)
    first_offset = wall.replace(tzinfo=zone, fold=0).utcoffset()
    offset = local.utcoffset()
    if local.fold == 0 or first_offset is None or offset is None or first_offset <= offset:
        return wall
    # `bound` is in the second pass of a repeated stretch whose wall times already fired
    # during the first pass: resume at the wall time where the repetition ends.
    repeat_start = _transition(bound - (first_offset - offset), bound, zone)
    return repeat_start.replace(tzinfo=None) + first_offset - _SECOND


def _transition(low: datetime, high: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """First whole-second instant in (low, high] having the UTC offset in force at `high`."""
    target = high.astimezone(zone).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)
