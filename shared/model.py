"""The stored `cron_jobs` and `cron_runs` documents, their enums and scheduling options."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from pydantic.alias_generators import to_camel

NAME_MAX_LENGTH = 100


class JobStatus(StrEnum):
    """What a job is doing now, as shown to its owner."""

    IDLE = "idle"
    RUNNING = "running"
    FAILED = "failed"
    PAUSED = "paused"
    # No slot left: past `endAt`, `maxRuns` reached, or a one-off that ran (shared/bounds.py).
    COMPLETED = "completed"


class RunStatus(StrEnum):
    """State of one run attempt; `pending` and `running` are the only non-final states."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ABANDONED = "abandoned"
    SKIPPED = "skipped"
    MISSED = "missed"


FINAL_RUN_STATUSES = frozenset(RunStatus) - {RunStatus.PENDING, RunStatus.RUNNING}


class RunTrigger(StrEnum):
    """Why a run exists."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    RETRY = "retry"
    # One real run of the job that leaves its bookkeeping alone (`POST /jobs/{id}/test`).
    TEST = "test"
    # A past slot queued again by an admin (`POST /jobs/{id}/backfill`), once per slot.
    BACKFILL = "backfill"


def moves_job_bookkeeping(trigger: RunTrigger) -> bool:
    """Whether a run of `trigger` counts on its job: `status`, `lastRunAt`, `lastError`,
    `runCount`/`failureCount`, `activeRunIds`, retries and notifications. All but `test`."""
    return trigger is not RunTrigger.TEST


class OverlapPolicy(StrEnum):
    """What a slot does while an earlier run of the same job is still going."""

    SKIP = "skip"
    ALLOW = "allow"


class MisfirePolicy(StrEnum):
    """What happens to a slot reached later than the misfire threshold."""

    RUN_ONCE = "runOnce"
    SKIP = "skip"


class CamelModel(BaseModel):
    """camelCase in JSON and MongoDB, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RetryPolicy(CamelModel):
    """Attempts per slot and the exponential backoff (with jitter) between them."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(3, ge=1, le=10, description="Attempts per slot, the first included.")
    backoff_seconds: float = Field(
        10, ge=0, le=3600, description="Delay before the first retry; doubles each attempt."
    )
    backoff_max_seconds: float = Field(
        600, ge=0, le=86_400, description="Upper bound of the delay between attempts."
    )


MAX_PAUSE_AFTER_FAILURES = 100


class NotifyPolicy(CamelModel):
    """Where the owner hears of failed slots and recoveries (failure notification)."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = Field(
        None,
        description="Address for notices (the sendEmail recipient rules).",
        examples=["alice@example.com"],
    )
    webhook: str | None = Field(
        None,
        description="URL POSTed a signed JSON notice (the httpRequest URL and SSRF rules).",
        examples=["https://hooks.example.com/cron"],
    )
    on_failure: bool = Field(True, description="Notify when the last attempt of a slot fails.")
    on_recovery: bool = Field(
        True, description="Notify on the first success after a notified failure."
    )

    @property
    def has_channel(self) -> bool:
        """Whether a notice has anywhere to go."""
        return self.email is not None or self.webhook is not None


class JobOptions(CamelModel):
    """Scheduling options a client may set on a job."""

    model_config = ConfigDict(extra="forbid")

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_seconds: int = Field(60, ge=1, description="Handler time limit per attempt.")
    overlap_policy: OverlapPolicy = Field(
        OverlapPolicy.SKIP, description="skip: a slot due while the job still runs is skipped."
    )
    misfire_policy: MisfirePolicy = Field(
        MisfirePolicy.RUN_ONCE,
        description="runOnce: late slots collapse into one run (within the grace); skip: none.",
    )
    misfire_grace_seconds: int = Field(
        300, ge=0, le=7 * 86_400, description="How late a slot may still run under runOnce."
    )
    notify: NotifyPolicy | None = Field(None, description="Failure and recovery notices.")
    pause_after_failures: int = Field(
        0,
        ge=0,
        le=MAX_PAUSE_AFTER_FAILURES,
        description="Pause the job after this many consecutive failed slots; 0: never.",
    )

    # Each slot starts at a stable offset in [0, jitterSeconds) (shared/jitter.py); at most
    # half the schedule's shortest interval (checked by the API, which knows the schedule).
    jitter_seconds: int = Field(
        0, ge=0, le=3600, description="Start each slot up to this many seconds late (stable)."
    )


class NotificationRecord(CamelModel):
    """The last notice the worker tried to deliver for a job, and whether it arrived."""

    at: datetime
    kind: str
    ok: bool
    error: str | None = None


class JobDocument(JobOptions):
    """A `cron_jobs` document."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    id: ObjectId = Field(alias="_id")
    owner_id: str
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    type: str
    # Exactly one schedule kind is set (see shared/job_schedule.py): `cron`, `every`, `runAt`.
    cron: str | None = None
    # An ISO 8601 duration ("PT90M"): slots at anchorAt + k x every, elapsed time in UTC.
    every: str | None = None
    # Interval jobs: the grid's origin (creation or the last change of `every`), whole seconds.
    anchor_at: datetime | None = None
    # One-off jobs: the single slot (the third schedule kind, shared/one_off.py).
    run_at: datetime | None = None
    # Bounds (shared/bounds.py): slots only within [startAt, endAt]; at most maxRuns successes.
    start_at: datetime | None = None
    end_at: datetime | None = None
    max_runs: int | None = None
    # Scheduled slots that succeeded (a retry's success counts for its slot): vs `maxRuns`.
    scheduled_success_count: int = 0
    timezone: str = "UTC"
    payload: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    # When the job was last paused (None while enabled): resume records the interval slots since.
    paused_at: datetime | None = None
    # Why the job is paused: "manual", or "auto: N consecutive failures" (None while enabled).
    paused_reason: str | None = None
    status: JobStatus = JobStatus.IDLE
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_error: str | None = None
    last_duration_ms: int | None = None
    active_run_ids: list[ObjectId] = Field(default_factory=list)
    # Overlap `skip`: the last run-now run, set by compare-and-set so only one is ever queued.
    queued_run_id: ObjectId | None = None
    # Whether the payload was last validated under admin rules (the run-time host exemption).
    payload_by_admin: bool = False
    run_count: int = 0
    failure_count: int = 0
    # Failure notification state (worker/notifications.py): consecutive failed slots, failed
    # slots not yet in a notice, the last failure notice, whether this streak was notified.
    failure_streak: int = 0
    unnotified_failures: int = 0
    last_failure_notice_at: datetime | None = None
    streak_notified: bool = False
    last_notification: NotificationRecord | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_mongo(cls, document: dict[str, Any]) -> JobDocument:
        """Parse a raw document as stored."""
        return cls.model_validate(document)

    def options(self) -> JobOptions:
        """The scheduling options alone."""
        return JobOptions.model_validate(self.model_dump(include=set(JobOptions.model_fields)))


class RunDocument(CamelModel):
    """A `cron_runs` document: one attempt (or a queued, skipped or missed slot)."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    id: ObjectId = Field(alias="_id")
    job_id: ObjectId
    owner_id: str
    job_name: str = ""
    type: str
    # Stable identity of the slot: the scheduled instant in ISO form, `manual:<id>`,
    # `test:<id>` or `backfill:<instant>`.
    slot: str
    scheduled_for: datetime
    trigger: RunTrigger
    attempt: int = 1
    status: RunStatus
    not_before: datetime | None = None
    # A scheduled run claimed later than this is recorded `missed` (its misfire bound).
    start_deadline: datetime | None = None
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    missed_count: int | None = None

    @field_validator("attempt")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("attempt starts at 1")
        return value


def slot_key(scheduled_for: datetime) -> str:
    """The `slot` of a scheduled run: its UTC instant, to the second."""
    return scheduled_for.strftime("%Y-%m-%dT%H:%M:%SZ")


def manual_slot_key(run_id: ObjectId) -> str:
    """The `slot` of a run-now request: unique per request."""
    return f"manual:{run_id}"


def test_slot_key(run_id: ObjectId) -> str:
    """The `slot` of a test run: unique per request."""
    return f"test:{run_id}"


def backfill_slot_key(scheduled_for: datetime) -> str:
    """The `slot` of a backfilled slot: one per slot, however often it is requested."""
    return f"backfill:{slot_key(scheduled_for)}"


def idempotency_key(job_id: ObjectId, slot: str) -> str:
    """Stable across retries of one slot: `jobId:slot`."""
    return f"{job_id}:{slot}"
