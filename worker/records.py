"""In-memory records of the worker (claims, advances, outcomes) and the run documents it writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pydantic import ValidationError

from shared.db import Document
from shared.model import (
    FINAL_RUN_STATUSES,
    JobOptions,
    JobStatus,
    RetryPolicy,
    RunStatus,
    RunTrigger,
)
from worker.planner import has_attempts_left, retry_delay

FAILED_STATUSES = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.ABANDONED})
_OPTION_FIELDS = (
    "retry",
    "timeoutSeconds",
    "overlapPolicy",
    "misfirePolicy",
    "misfireGraceSeconds",
)


def utc_now() -> datetime:
    """Now in UTC, truncated to milliseconds (what a BSON date keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Claimed:
    """A run this worker holds the lease of, with the job as read when it was claimed."""

    run: Document
    job: Document

    @property
    def run_id(self) -> ObjectId:
        """The run's `_id`."""
        return ObjectId(self.run["_id"])

    @property
    def job_id(self) -> ObjectId:
        """The job's `_id`."""
        return ObjectId(self.run["jobId"])

    @property
    def attempt(self) -> int:
        """The attempt number, 1 for the first."""
        return int(self.run.get("attempt", 1))


@dataclass
class ClaimPass:
    """What one claim pass produced: runs to execute, and whether more work is already due."""

    claimed: list[Claimed] = field(default_factory=list)
    more: bool = False


@dataclass(frozen=True)
class Advance:
    """Move a job's `nextRunAt` forward after its slot was claimed (by us or by another worker)."""

    job_id: ObjectId
    # The job's `version` as read: a client write since then makes the advance miss.
    version: Any
    next_run_at: datetime
    # The run this worker starts (added to `activeRunIds`); None only moves `nextRunAt`.
    run_id: ObjectId | None = None
    # Overlap policy `skip`: the run may only start while no other run of the job is active.
    require_idle: bool = False


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, and what that means for the job and for the next attempt."""

    run_id: ObjectId
    job_id: ObjectId
    status: RunStatus
    started_at: datetime
    ended_at: datetime
    error: str | None = None
    result: dict[str, Any] | None = None
    # The next attempt, inserted as a pending run, if this one failed with attempts left.
    retry: Document | None = None
    # The job's status afterwards (unless it is paused); None leaves the job untouched.
    job_status: JobStatus | None = None
    # False when the run document was already finalised (the reaper's conditional update).
    update_run: bool = True

    @property
    def duration_ms(self) -> int:
        """Wall-clock duration of the attempt."""
        return max(0, int((self.ended_at - self.started_at) / timedelta(milliseconds=1)))

    @property
    def failed(self) -> bool:
        """Whether the attempt counts as a failure."""
        return self.status in FAILED_STATUSES


def run_document(
    job: Document,
    *,
    slot: str,
    scheduled_for: datetime,
    trigger: RunTrigger,
    status: RunStatus,
    now: datetime,
    attempt: int = 1,
    error: str | None = None,
    worker_id: str | None = None,
    lease_until: datetime | None = None,
    missed_count: int | None = None,
) -> Document:
    """A new `cron_runs` document for `job` (see docs/design.md, "cron_runs")."""
    final = status in FINAL_RUN_STATUSES
    return {
        "_id": ObjectId(),
        "jobId": job["_id"],
        "ownerId": job.get("ownerId"),
        "jobName": job.get("name", ""),
        "type": job.get("type"),
        "slot": slot,
        "scheduledFor": scheduled_for,
        "trigger": trigger.value,
        "attempt": attempt,
        "status": status.value,
        "notBefore": None,
        "workerId": worker_id,
        "leaseExpiresAt": lease_until,
        "createdAt": now,
        "startedAt": now if status is RunStatus.RUNNING else None,
        "endedAt": now if final else None,
        "durationMs": None,
        "error": error,
        "result": None,
        "missedCount": missed_count,
    }


def retry_document(run: Document, *, not_before: datetime, now: datetime) -> Document:
    """The pending next attempt of `run`: same job and slot, attempt + 1, trigger `retry`."""
    return {
        "_id": ObjectId(),
        "jobId": run["jobId"],
        "ownerId": run.get("ownerId"),
        "jobName": run.get("jobName", ""),
        "type": run.get("type"),
        "slot": run["slot"],
        "scheduledFor": run["scheduledFor"],
        "trigger": RunTrigger.RETRY.value,
        "attempt": int(run.get("attempt", 1)) + 1,
        "status": RunStatus.PENDING.value,
        "notBefore": not_before,
        "createdAt": now,
    }


def options_of(job: Document) -> JobOptions:
    """The job's scheduling options; the defaults if the stored ones are unusable."""
    try:
        return JobOptions.model_validate({key: job[key] for key in _OPTION_FIELDS if key in job})
    except ValidationError:
        return JobOptions()


def retry_policy_of(job: Document) -> RetryPolicy:
    """The job's retry policy; the default one if the stored value is unusable."""
    try:
        return RetryPolicy.model_validate(job.get("retry") or {})
    except ValidationError:
        return RetryPolicy()


def conclude(
    claimed: Claimed,
    status: RunStatus,
    *,
    started_at: datetime,
    ended_at: datetime,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    retryable: bool = True,
    retry_at_once: bool = False,
) -> Outcome:
    """The outcome of an attempt, with the next attempt queued if it failed and may retry."""
    retry = None
    failed = status in FAILED_STATUSES
    policy = retry_policy_of(claimed.job)
    if failed and retryable and has_attempts_left(claimed.attempt, policy):
        delay = 0.0 if retry_at_once else retry_delay(claimed.attempt, policy)
        not_before = ended_at + timedelta(seconds=delay)
        retry = retry_document(claimed.run, not_before=not_before, now=ended_at)
    job_status = JobStatus.FAILED if failed and retry is None else JobStatus.IDLE
    return Outcome(
        run_id=claimed.run_id,
        job_id=claimed.job_id,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        error=error,
        result=result,
        retry=retry,
        job_status=job_status,
    )
