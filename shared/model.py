"""The stored `cron_jobs` and `cron_runs` documents, their enums and scheduling options."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

NAME_MAX_LENGTH = 100


class JobStatus(StrEnum):
    """What a job is doing now, as shown to its owner."""

    IDLE = "idle"
    RUNNING = "running"
    FAILED = "failed"
    PAUSED = "paused"


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
    # Each slot starts at a stable offset in [0, jitterSeconds) (shared/jitter.py); at most
    # half the schedule's shortest interval (checked by the API, which knows the schedule).
    jitter_seconds: int = Field(
        0, ge=0, le=3600, description="Start each slot up to this many seconds late (stable)."
    )


class JobDocument(JobOptions):
    """A `cron_jobs` document."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    id: ObjectId = Field(alias="_id")
    owner_id: str
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    type: str
    # Exactly one schedule kind is set (see shared/job_schedule.py): `cron` or `every`.
    cron: str | None = None
    # An ISO 8601 duration ("PT90M"): slots at anchorAt + k x every, elapsed time in UTC.
    every: str | None = None
    # Interval jobs: the grid's origin (creation or the last change of `every`), whole seconds.
    anchor_at: datetime | None = None
    timezone: str = "UTC"
    payload: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    # When the job was last paused (None while enabled): resume records the interval slots since.
    paused_at: datetime | None = None
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
    # Stable identity of the slot: the scheduled instant in ISO form, or `manual:<id>`.
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


def idempotency_key(job_id: ObjectId, slot: str) -> str:
    """Stable across retries of one slot: `jobId:slot`."""
    return f"{job_id}:{slot}"
