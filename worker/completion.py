"""When a job is `completed`: its last slot is decided, or `maxRuns` scheduled slots succeeded.

Pure decisions on a job as the worker read it; the store turns them into conditional writes
(on the job's version, so a client edit in between, which may give the job slots again, wins).
A slot is scheduled when it is a schedule slot or a retry of one (run-now runs never count).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from shared.bounds import next_or_none
from shared.job_schedule import SlotSchedule, schedule_of
from shared.model import JobStatus, RunStatus, RunTrigger

if TYPE_CHECKING:
    from worker.store import JobView, RunView

# What a job's (bounded) schedule is built from.
BoundedKey = tuple[
    str | None, str, str | None, datetime | None, datetime | None, datetime | None, datetime | None
]


@dataclass(frozen=True, slots=True)
class Completion:
    """Complete the job with this outcome, if its version is still `version` and (maxRuns)
    at least `min_successes` slots had succeeded before this one."""

    version: Any
    min_successes: int | None = None


def bounded_key(job: JobView) -> BoundedKey:
    """The fields of a job's schedule, bounds included."""
    return (
        job.cron,
        job.timezone,
        job.every,
        job.anchor_at,
        job.run_at,
        job.start_at,
        job.end_at,
    )


@lru_cache(maxsize=4096)
def bounded_schedule(key: BoundedKey) -> SlotSchedule:
    """The parsed, bounded schedule (cached: a herd shares a few schedules)."""
    cron, timezone, every, anchor_at, run_at, start_at, end_at = key
    return schedule_of(
        cron=cron,
        every=every,
        anchor_at=anchor_at,
        timezone=timezone,
        run_at=run_at,
        start_at=start_at,
        end_at=end_at,
    )


def has_slot_after(job: JobView, instant: datetime) -> bool:
    """Whether the job's schedule has a slot after `instant` (True if it cannot be evaluated:
    completing is never a guess)."""
    if job.run_at is None and job.end_at is None:
        # Cron (no year field) and `every` schedules never run out: no need to evaluate one for
        # every finished run, which cost a herd half its worker CPU.
        return True
    try:
        return next_or_none(bounded_schedule(bounded_key(job)), instant) is not None
    except ValueError:
        return True


# Slot keys of runs outside the schedule (run-now, test runs, backfilled slots) and their retries.
UNSCHEDULED_SLOT_PREFIXES: Final = ("manual:", "test:", "backfill:")


def is_scheduled(run: RunView) -> bool:
    """A schedule slot or a retry of one (not a run-now run or its retries)."""
    return run.trigger is RunTrigger.SCHEDULE or (
        run.trigger is RunTrigger.RETRY and not run.slot.startswith(UNSCHEDULED_SLOT_PREFIXES)
    )


def is_completed(job: JobView) -> bool:
    """Whether the job was completed when read."""
    return job.status is JobStatus.COMPLETED


def max_runs_reached(job: JobView) -> bool:
    """Whether `maxRuns` scheduled slots have succeeded already."""
    return job.max_runs is not None and job.scheduled_success_count >= job.max_runs


def completion_of(
    run: RunView, job: JobView | None, status: RunStatus, *, retried: bool
) -> Completion | None:
    """Whether this final attempt completes its job: the last slot of the schedule is over
    (whatever its outcome), or it is the `maxRuns`-th success."""
    if job is None or retried or not is_scheduled(run):
        return None
    if not has_slot_after(job, run.scheduled_for):
        return Completion(job.version)
    if status is RunStatus.SUCCEEDED and job.max_runs is not None:
        return Completion(job.version, min_successes=job.max_runs - 1)
    return None


def ends_schedule(run: RunView, job: JobView | None, status: RunStatus) -> bool:
    """A scheduled slot released without running (`missed`/`skipped`) that was the job's last."""
    if job is None or not job.enabled or is_completed(job) or not is_scheduled(run):
        return False
    final = status in {RunStatus.MISSED, RunStatus.SKIPPED}
    return final and not has_slot_after(job, run.scheduled_for)
