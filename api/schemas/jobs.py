"""Job bodies: create / replace / patch requests, the job as returned, a page of jobs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from api.schemas.common import RequestModel, ResponseModel
from shared.interval import EVERY_MAX_LENGTH
from shared.jitter import JITTER_MAX_SECONDS
from shared.model import (
    NAME_MAX_LENGTH,
    JobDocument,
    JobStatus,
    MisfirePolicy,
    OverlapPolicy,
    RetryPolicy,
)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
OWNER_ID_MAX_LENGTH = 256
TYPE_MAX_LENGTH = 64
CRON_MAX_LENGTH = 200
TIMEZONE_MAX_LENGTH = 64

EXAMPLE_PAYLOAD = {
    "to": ["alice@example.com"],
    "subject": "Stand-up",
    "template": "reminder",
    "params": {"title": "Stand-up at 9:00"},
}


def _printable(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, ...)")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        description="Unique per owner; one line.",
        examples=["morning digest"],
    ),
    AfterValidator(_printable),
]
OwnerId = Annotated[
    str,
    Field(min_length=1, max_length=OWNER_ID_MAX_LENGTH, examples=["alice"]),
    AfterValidator(_printable),
]
JobType = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TYPE_MAX_LENGTH,
        description="One of `GET /job-types`.",
        examples=["sendEmail"],
    ),
]
CRON_DESCRIPTION = (
    "Wall-clock schedule: 5 fields (minute hour day month weekday) or 6 with leading seconds "
    "(admins only below the minimum interval), evaluated in `timezone`. `L` in the day field is "
    "the last day of the month; `FRI#2` in the weekday field the second Friday of the month. "
    "Set exactly one of `cron` and `every`."
)
EVERY_DESCRIPTION = (
    "Interval schedule: an ISO 8601 duration in weeks, days, hours, minutes (`PT90M`, `PT36H`, "
    "`P1D` = 24 h, `P1W`; at most 366 days; seconds such as `PT30S` only for admins; months "
    "and years are refused). Slots are elapsed time, `anchorAt` + k x `every` in UTC, not moved "
    "by DST. Set exactly one of `cron` and `every`."
)
Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=CRON_MAX_LENGTH,
        description=CRON_DESCRIPTION,
        examples=["0 8 * * 1-5"],
    ),
]
Every = Annotated[
    str,
    Field(
        min_length=1,
        max_length=EVERY_MAX_LENGTH,
        description=EVERY_DESCRIPTION,
        examples=["PT90M"],
    ),
]
Timezone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=TIMEZONE_MAX_LENGTH,
        description="IANA time zone the cron is evaluated in.",
        examples=["Europe/Berlin"],
    ),
]
Payload = Annotated[
    dict[str, Any],
    Field(description="The type's payload (see its JSON Schema).", examples=[EXAMPLE_PAYLOAD]),
]
TIMEOUT_DESCRIPTION = (
    "Handler time limit per attempt in seconds (at most CRON_MAX_TIMEOUT_SECONDS); "
    "omitted: CRON_DEFAULT_TIMEOUT_SECONDS."
)
GraceSeconds = Annotated[int, Field(ge=0, le=7 * 86_400, examples=[300])]
JITTER_DESCRIPTION = (
    "Start each slot up to this many seconds after its scheduled time, at an offset that is "
    "stable for the job and slot (0..3600, at most half the schedule's shortest interval; "
    "0 = on time). Spreads jobs that share a time; runs keep the nominal `scheduledFor`."
)
JitterSeconds = Annotated[
    int, Field(ge=0, le=JITTER_MAX_SECONDS, description=JITTER_DESCRIPTION, examples=[30])
]


class RetryIn(RetryPolicy):
    """Attempts per slot and backoff (camelCase only)."""

    model_config = ConfigDict(validate_by_alias=True, validate_by_name=False)


class JobReplace(RequestModel):
    """A whole job (PUT): every omitted optional field takes its default."""

    name: Name
    type: JobType
    cron: Cron | None = Field(None, description=CRON_DESCRIPTION, examples=["0 8 * * 1-5"])
    every: Every | None = Field(None, description=EVERY_DESCRIPTION, examples=["PT90M"])
    timezone: Timezone = "UTC"
    payload: Payload = Field(default_factory=dict)
    enabled: bool = True
    retry: RetryIn = Field(default_factory=RetryIn)
    timeout_seconds: int | None = Field(None, ge=1, description=TIMEOUT_DESCRIPTION, examples=[60])
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    misfire_grace_seconds: GraceSeconds = 300
    jitter_seconds: JitterSeconds = 0


class JobCreate(JobReplace):
    """A new job (POST); `ownerId` only for admins (default: the caller)."""

    owner_id: OwnerId | None = Field(
        None, description="Admins only: create the job for this owner."
    )


class JobPatch(RequestModel):
    """Fields to change (PATCH); the merged job is validated as a whole. `null` is not allowed."""

    name: Name | None = None
    type: JobType | None = None
    cron: Cron | None = Field(
        None,
        description="Switches the job to this cron (clears `every`).",
        examples=["0 8 * * 1-5"],
    )
    every: Every | None = Field(
        None,
        description="Switches the job to this interval (clears `cron`); moves `anchorAt` to now.",
        examples=["PT90M"],
    )
    timezone: Timezone | None = None
    payload: Payload | None = None
    enabled: bool | None = Field(None, description="false pauses the job, true resumes it.")
    retry: RetryIn | None = None
    timeout_seconds: int | None = Field(None, ge=1, description=TIMEOUT_DESCRIPTION, examples=[60])
    overlap_policy: OverlapPolicy | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_grace_seconds: GraceSeconds | None = None
    jitter_seconds: JitterSeconds | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (omit the field to leave it unchanged)")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, by Python name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class RetryOut(ResponseModel):
    """Retry policy as stored."""

    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float


class JobOut(ResponseModel):
    """A job as its owner sees it."""

    id: str = Field(examples=["6740a1f2c3d4e5f601234567"])
    owner_id: str
    name: str
    type: str
    cron: str | None = Field(
        description="The cron, or null for an interval job.", examples=["0 8 * * 1-5"]
    )
    every: str | None = Field(
        description="The interval (ISO 8601 duration), or null for a cron job.",
        examples=["PT90M"],
    )
    anchor_at: datetime | None = Field(
        description="Interval jobs: the grid's origin, slots at anchorAt + k x every (UTC); "
        "set at creation and whenever `every` (or the schedule kind) changes; null for cron.",
    )
    timezone: str
    payload: dict[str, Any]
    enabled: bool
    status: JobStatus
    next_run_at: datetime | None = Field(description="Next scheduled slot (UTC); null if paused.")
    last_run_at: datetime | None
    last_error: str | None
    last_duration_ms: int | None
    run_count: int
    failure_count: int
    version: int = Field(description="Bumped by every client write; the ETag.")
    created_at: datetime
    updated_at: datetime
    retry: RetryOut
    timeout_seconds: int
    overlap_policy: OverlapPolicy
    misfire_policy: MisfirePolicy
    misfire_grace_seconds: int
    jitter_seconds: int = Field(description=JITTER_DESCRIPTION, examples=[30])

    @classmethod
    def of(cls, job: JobDocument) -> JobOut:
        """The response body of a stored job."""
        return cls(
            id=str(job.id),
            owner_id=job.owner_id,
            name=job.name,
            type=job.type,
            cron=job.cron,
            every=job.every,
            anchor_at=job.anchor_at,
            timezone=job.timezone,
            payload=job.payload,
            enabled=job.enabled,
            status=job.status,
            next_run_at=job.next_run_at,
            last_run_at=job.last_run_at,
            last_error=job.last_error,
            last_duration_ms=job.last_duration_ms,
            run_count=job.run_count,
            failure_count=job.failure_count,
            version=job.version,
            created_at=job.created_at,
            updated_at=job.updated_at,
            retry=RetryOut.model_validate(job.retry.model_dump()),
            timeout_seconds=job.timeout_seconds,
            overlap_policy=job.overlap_policy,
            misfire_policy=job.misfire_policy,
            misfire_grace_seconds=job.misfire_grace_seconds,
            jitter_seconds=job.jitter_seconds,
        )


class JobPage(ResponseModel):
    """One page of jobs in stable order."""

    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class RunNowOut(ResponseModel):
    """A queued manual run."""

    run_id: str
    job_id: str
    status: str = Field(examples=["pending"])
