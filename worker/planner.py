"""Pure scheduling decisions: which due slot runs, which are missed or skipped, retry delays."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final

from shared.model import JobOptions, MisfirePolicy, OverlapPolicy, RetryPolicy
from shared.schedule import Schedule
from shared.settings import Settings

_SECOND: Final = timedelta(seconds=1)
# Slots fetched per step while looking for the latest due slot.
_SEARCH_STEP: Final = 256
# Missed slots beyond the individual records are counted up to this many (a lower bound
# beyond): counting walks the schedule, and a backlog of a seconds-cron can be huge.
MISSED_COUNT_CAP: Final = 10_000

SUPERSEDED: Final = "missed: a later slot of this job was already due"
OVERLAP: Final = "skipped: the previous run is still active (overlapPolicy skip)"


@lru_cache(maxsize=4096)
def schedule_for(cron: str, timezone: str) -> Schedule:
    """The parsed schedule (cached: a herd of jobs usually shares a few schedules)."""
    return Schedule.parse(cron, timezone)


@dataclass(frozen=True)
class PlannerLimits:
    """The deployment-wide knobs of slot planning."""

    misfire_threshold: timedelta
    max_missed_records: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PlannerLimits:
        """`CRON_MISFIRE_THRESHOLD_SECONDS` and `CRON_MAX_MISSED_RECORDS`."""
        return cls(
            misfire_threshold=timedelta(seconds=settings.misfire_threshold_seconds),
            max_missed_records=settings.max_missed_records,
        )


@dataclass(frozen=True)
class DueSlots:
    """Slot arithmetic of one schedule from one `nextRunAt` at one instant."""

    # The latest slot in [nextRunAt, now], the only one that may run; None if none is due.
    latest: datetime | None
    # Earlier due slots, oldest first, each recorded `missed` on its own.
    missed: tuple[datetime, ...]
    # Due slots beyond `missed`, summarised in one record: its first slot and how many.
    summary_from: datetime | None
    summary_count: int
    # The first slot after now: the job's new `nextRunAt`.
    next_run_at: datetime


def due_slots(
    schedule: Schedule, next_run_at: datetime, now: datetime, max_records: int
) -> DueSlots:
    """Which slots from `next_run_at` up to `now` are due, and where the schedule goes next."""
    following = schedule.next_after(now)
    latest = _latest_slot(schedule, next_run_at, now)
    if latest is None:
        return DueSlots(None, (), None, 0, following)
    earlier = schedule.slots_between(next_run_at, latest - _SECOND, max_records + 1)
    if len(earlier) <= max_records:
        return DueSlots(latest, tuple(earlier), None, 0, following)
    summary_from = earlier[max_records]
    rest = schedule.slots_between(summary_from, latest - _SECOND, MISSED_COUNT_CAP)
    return DueSlots(latest, tuple(earlier[:max_records]), summary_from, len(rest), following)


def _latest_slot(schedule: Schedule, start: datetime, now: datetime) -> datetime | None:
    """The latest slot in [start, now]: look back over doubling windows, never walk the gap."""
    window = _SECOND
    while True:
        low = max(start, now - window)
        slots = schedule.slots_between(low, now, _SEARCH_STEP)
        if slots:
            latest = slots[-1]
            while len(slots) == _SEARCH_STEP:
                slots = schedule.slots_between(latest + _SECOND, now, _SEARCH_STEP)
                latest = slots[-1] if slots else latest
            return latest
        if low <= start:
            return None
        window *= 2


class Action(StrEnum):
    """What happens to the latest due slot."""

    RUN = "run"
    SKIP = "skip"
    MISS = "miss"


@dataclass(frozen=True)
class Decision:
    """The action for a slot and, unless it runs, the reason recorded on its run document."""

    action: Action
    reason: str | None = None


def decide(
    slot: datetime,
    now: datetime,
    options: JobOptions,
    *,
    has_active_run: bool,
    misfire_threshold: timedelta,
) -> Decision:
    """Misfire policy first (a slot later than the threshold), then the overlap policy."""
    lateness = now - slot
    if lateness > misfire_threshold:
        late = f"misfire: {lateness.total_seconds():.0f} s late"
        if options.misfire_policy is MisfirePolicy.SKIP:
            return Decision(Action.MISS, f"{late}; misfirePolicy is skip")
        if lateness > timedelta(seconds=options.misfire_grace_seconds):
            grace = options.misfire_grace_seconds
            return Decision(Action.MISS, f"{late}, beyond misfireGraceSeconds ({grace} s)")
    if options.overlap_policy is OverlapPolicy.SKIP and has_active_run:
        return Decision(Action.SKIP, OVERLAP)
    return Decision(Action.RUN)


def has_attempts_left(attempt: int, policy: RetryPolicy) -> bool:
    """Whether attempt number `attempt` may be followed by another one."""
    return attempt < policy.max_attempts


def retry_delay(
    failed_attempt: int,
    policy: RetryPolicy,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before the attempt after `failed_attempt` (1-based): exponential, full jitter.

    The ceiling doubles per attempt from `backoffSeconds`, capped by `backoffMaxSeconds`; the
    delay is drawn uniformly between `backoffSeconds` and that ceiling, so the first retry
    waits exactly `backoffSeconds` and later ones spread out to avoid retrying in lockstep.
    """
    floor = min(policy.backoff_seconds, policy.backoff_max_seconds)
    exponent = max(0, min(failed_attempt - 1, 30))
    ceiling = max(floor, min(policy.backoff_max_seconds, policy.backoff_seconds * 2**exponent))
    return uniform(floor, ceiling)


class MissVerdict(StrEnum):
    """Why the advance of a job this worker won a slot of did not match."""

    APPLIED = "applied"  # it did apply (a retried write): the run stands
    WITHDRAWN = "withdrawn"  # deleted, paused or rescheduled: the slot no longer runs
    OVERLAP = "overlap"  # unchanged, but another run of the job is active (overlap `skip`)
    EDITED = "edited"  # some other edit: advance again on the new version


def miss_verdict(
    read: Mapping[str, Any], state: Mapping[str, Any] | None, run_id: Any, *, overlap_skip: bool
) -> MissVerdict:
    """Judge a missed advance on the job as read (`read`) and as it is now (`state`)."""
    if state is None or state.get("enabled") is not True:
        return MissVerdict.WITHDRAWN
    if run_id in state.get("activeRunIds", []):
        return MissVerdict.APPLIED
    if any(state.get(key) != read.get(key) for key in ("cron", "timezone")):
        return MissVerdict.WITHDRAWN
    if overlap_skip and state.get("version") == read.get("version"):
        return MissVerdict.OVERLAP
    return MissVerdict.EDITED
