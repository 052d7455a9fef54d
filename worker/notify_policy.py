"""Which outcomes move a job's failure streak, and the pure decisions of notices and auto-pause.

A slot *fails* when its last attempt fails (an attempt that queues a retry does not count); it
*succeeds* when an attempt succeeds. The streak, the failures not yet in a notice and the time of
the last notice live on the job document (worker/store.py writes them atomically); these
functions decide from those values, so every worker decides alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from shared.model import NotifyPolicy, RunStatus, RunTrigger

if TYPE_CHECKING:
    from worker.store import JobView, RunView

AUTO_PAUSE_PREFIX: Final = "auto: "
# Backfilled slots count like scheduled ones (they do for the job's counters too).
STREAK_TRIGGERS: Final = frozenset(
    {RunTrigger.SCHEDULE, RunTrigger.MANUAL, RunTrigger.RETRY, RunTrigger.BACKFILL}
)


class StreakEvent(StrEnum):
    """What a slot's outcome does to its job's failure streak."""

    FAILED_SLOT = "failedSlot"
    SUCCEEDED = "succeeded"


class NoticeKind(StrEnum):
    """The notices a job's owner receives."""

    FAILURE = "failure"
    RECOVERY = "recovery"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class StreakStep:
    """A slot outcome that counts for the streak, with what its notice would name."""

    event: StreakEvent
    slot: str
    scheduled_for: datetime
    # The job as the attempt read it had a notified streak: a success may owe a recovery notice.
    streak_notified: bool = False


def counts_for_streak(run: RunView) -> bool:
    """THE predicate: whether this run's outcome counts for the failure streak and notices.

    Scheduled runs, run-now runs, backfilled slots and their retries count; a trigger not listed in
    STREAK_TRIGGERS (e.g. a test run, which must not touch counters or notifications) does not.
    """
    return run.trigger in STREAK_TRIGGERS


def streak_step(
    run: RunView, job: JobView | None, status: RunStatus, *, failed: bool, retry_queued: bool
) -> StreakStep | None:
    """The streak step of an attempt's outcome; None if it does not end its slot or not count."""
    if not counts_for_streak(run):
        return None
    if failed and not retry_queued:
        event = StreakEvent.FAILED_SLOT
    elif status is RunStatus.SUCCEEDED:
        event = StreakEvent.SUCCEEDED
    else:
        return None
    notified = job is not None and job.raw.get("streakNotified") is True
    return StreakStep(event, run.slot, run.scheduled_for, streak_notified=notified)


def failure_notice_not_before(now: datetime, min_interval_seconds: float) -> datetime:
    """A failure notice is due only if the last one was sent at or before this instant."""
    return now - timedelta(seconds=min_interval_seconds)


def failure_notice_due(
    last_notice_at: datetime | None, now: datetime, min_interval_seconds: float
) -> bool:
    """Whether a failure now may be notified (the store's claim applies the same rule)."""
    if last_notice_at is None:
        return True
    return last_notice_at <= failure_notice_not_before(now, min_interval_seconds)


def pause_threshold(document: dict[str, Any], default: int) -> int:
    """The job's `pauseAfterFailures`; a job stored without one: the default setting."""
    value = document.get("pauseAfterFailures")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def should_pause(streak: int, threshold: int) -> bool:
    """Whether `streak` consecutive failed slots pause the job (threshold 0: never)."""
    return threshold > 0 and streak >= threshold


def auto_pause_reason(streak: int) -> str:
    """`pausedReason` of an auto-pause."""
    return f"{AUTO_PAUSE_PREFIX}{streak} consecutive failures"


def notify_policy(document: dict[str, Any]) -> NotifyPolicy | None:
    """The job's notice settings, if usable and naming a channel."""
    raw = document.get("notify")
    if not isinstance(raw, dict):
        return None
    try:
        policy = NotifyPolicy.model_validate(raw)
    except ValueError:
        return None
    return policy if policy.has_channel else None


def wants_failure_notice(policy: NotifyPolicy | None, *, paused: bool) -> bool:
    """A failure notice goes out if asked for; an auto-pause is always told (to any channel)."""
    return policy is not None and (policy.on_failure or paused)


def wants_recovery_notice(policy: NotifyPolicy | None) -> bool:
    """A recovery notice goes out if asked for."""
    return policy is not None and policy.on_recovery
