"""The one family of `cron_runs` document constructors, the reasons users see, and `utc_now`.

The worker (scheduled slots, retries, missed and skipped records) and the API (run-now, slots
recorded by an edit) build every run document here, so the stored shape has one definition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from bson import ObjectId

from shared.model import (
    FINAL_RUN_STATUSES,
    RunStatus,
    RunTrigger,
    backfill_slot_key,
    manual_slot_key,
    slot_key,
    test_slot_key,
)

Document = dict[str, Any]
MAX_ERROR_CHARS = 500


def utc_now() -> datetime:
    """Now in UTC, truncated to milliseconds (what a BSON date keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def error_summary(error: BaseException, *, with_class: bool = True) -> str:
    """One line for a run's `error` or a log line: the first line, without tracebacks.

    PyMongo's topology description (", Timeout: ...") is cut off; the class name is prefixed
    unless `with_class` is False (a handler's own HandlerError message stands alone), and
    stands alone for an error without a message.
    """
    lines = str(error).strip().splitlines()
    text = lines[0].split(", Timeout: ")[0] if lines else ""
    if with_class and text:
        text = f"{type(error).__name__}: {text}"
    return (text or type(error).__name__)[:MAX_ERROR_CHARS]


class RunReason(StrEnum):
    """Why a slot did not run (or stopped): the stable texts stored in `run.error`."""

    JOB_DELETED = "job deleted"
    PAUSED = "paused: the job was paused before this slot started"
    RESCHEDULED = "rescheduled: the job's schedule changed before this slot started"
    PAUSED_GAP = "missed: the job was paused at this slot (recorded when it was resumed)"
    SUPERSEDED = "missed: a later slot of this job was already due"
    SUMMARISED = "missed: more due slots of this job (summarised, see missedCount)"
    MISFIRE_SKIP = "missed: not started within its start tolerance (misfirePolicy skip)"
    MISFIRE_GRACE = "missed: not started within misfireGraceSeconds (misfirePolicy runOnce)"
    COMPLETED = "skipped: the job is completed (no slot left, or maxRuns reached)"
    OVERLAP = "skipped: the previous run is still active (overlapPolicy skip)"
    WORKER_SHUTDOWN = "worker shutdown"
    LEASE_EXPIRED = "lease expired: its worker stopped renewing it"
    WORKER_DEAD = "worker stopped: no heartbeat from its worker"


class JobFields(Protocol):
    """What a run document copies from its job."""

    @property
    def id(self) -> ObjectId: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...


def _run(
    job: JobFields,
    *,
    slot: str,
    scheduled_for: datetime,
    trigger: RunTrigger,
    status: RunStatus,
    now: datetime,
    run_id: ObjectId | None = None,
    attempt: int = 1,
    not_before: datetime | None = None,
    start_deadline: datetime | None = None,
    error: str | None = None,
    missed_count: int | None = None,
) -> Document:
    return {
        "_id": run_id or ObjectId(),
        "jobId": job.id,
        "ownerId": job.owner_id,
        "jobName": job.name,
        "type": job.type,
        "slot": slot,
        "scheduledFor": scheduled_for,
        "trigger": trigger.value,
        "attempt": attempt,
        "status": status.value,
        "notBefore": not_before,
        "startDeadline": start_deadline,
        "workerId": None,
        "leaseExpiresAt": None,
        "createdAt": now,
        "startedAt": None,
        "endedAt": now if status in FINAL_RUN_STATUSES else None,
        "durationMs": None,
        "error": error,
        "result": None,
        "missedCount": missed_count,
    }


def scheduled_run(
    job: JobFields,
    slot: datetime,
    *,
    now: datetime,
    start_deadline: datetime | None,
    lease: tuple[str, datetime] | None = None,
    not_before: datetime | None = None,
) -> Document:
    """A due slot queued by the schedule stage: `pending` until its start deadline.

    With `lease` (worker id, expiry) the run is queued already acquired by that worker, as an
    acquisition would leave it (`running`, leased, not yet started on its job): the insert that
    wins the unique `(jobId, slot, attempt)` index is the acquisition, one write instead of two.
    `not_before`: the jittered start (default: the slot itself).
    """
    document = _run(
        job,
        slot=slot_key(slot),
        scheduled_for=slot,
        trigger=RunTrigger.SCHEDULE,
        status=RunStatus.PENDING,
        now=now,
        not_before=not_before or slot,
        start_deadline=start_deadline,
    )
    if lease is not None:
        worker_id, until = lease
        document |= {
            "status": RunStatus.RUNNING.value,
            "workerId": worker_id,
            "leaseExpiresAt": until,
            "startedAt": now,
        }
    return document


def manual_run(
    job: JobFields,
    *,
    now: datetime,
    run_id: ObjectId | None = None,
    trigger: RunTrigger = RunTrigger.MANUAL,
) -> Document:
    """A run-now (or, with `trigger` TEST, a test) request (API): `pending`, due at once, its
    own slot."""
    run_id = run_id or ObjectId()
    slot = test_slot_key(run_id) if trigger is RunTrigger.TEST else manual_slot_key(run_id)
    return _run(
        job,
        slot=slot,
        scheduled_for=now,
        trigger=trigger,
        status=RunStatus.PENDING,
        now=now,
        run_id=run_id,
        not_before=now,
    )


def backfill_run(job: JobFields, slot: datetime, *, now: datetime) -> Document:
    """A past slot queued by an admin's backfill: `pending`, due at once, no start deadline;
    its `scheduledFor` is the slot, its `slot` the deterministic `backfill:<instant>`."""
    return _run(
        job,
        slot=backfill_slot_key(slot),
        scheduled_for=slot,
        trigger=RunTrigger.BACKFILL,
        status=RunStatus.PENDING,
        now=now,
        not_before=now,
    )


def slot_record(
    job: JobFields,
    slot: datetime,
    status: RunStatus,
    reason: RunReason,
    *,
    now: datetime,
    missed_count: int | None = None,
) -> Document:
    """A slot that will not run, final at once: `missed` or `skipped` with its reason."""
    return _run(
        job,
        slot=slot_key(slot),
        scheduled_for=slot,
        trigger=RunTrigger.SCHEDULE,
        status=status,
        now=now,
        error=reason.value,
        missed_count=missed_count,
    )


def retry_run(run: Document, *, not_before: datetime, now: datetime) -> Document:
    """The pending next attempt of `run` (a stored run document): same slot, attempt + 1."""
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
        "startDeadline": None,
        "workerId": None,
        "leaseExpiresAt": None,
        "createdAt": now,
        "startedAt": None,
        "endedAt": None,
        "durationMs": None,
        "error": None,
        "result": None,
        "missedCount": None,
    }
