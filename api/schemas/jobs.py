"""Job bodies: create / replace / patch requests, the job as returned, a page of jobs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from api.schemas.bounds import (
    END_AT_DESCRIPTION,
    MAX_RUNS_DESCRIPTION,
    RUN_AT_DESCRIPTION,
    START_AT_DESCRIPTION,
    SUCCESS_COUNT_DESCRIPTION,
    Instant,
    MaxRuns,
)
from api.schemas.common import RequestModel, ResponseModel
from shared import netguard
from shared.interval import EVERY_MAX_LENGTH
from shared.jitter import JITTER_MAX_SECONDS
from shared.model import (
    MAX_PAUSE_AFTER_FAILURES,
    NAME_MAX_LENGTH,
    JobDocument,
    JobStatus,
    MisfirePolicy,
    NotificationRecord,
    NotifyPolicy,
    OverlapPolicy,
    RetryPolicy,
)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
OWNER_ID_MAX_LENGTH = 256
TYPE_MAX_LENGTH = 64
CRON_MAX_LENGTH = 200
TIMEZONE_MAX_LENGTH = 64
# PATCH fields that null clears (the bounds); every other field refuses null.
CLEARABLE_FIELDS = frozenset({"start_at", "end_at", "max_runs"})

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
    "Set exactly one of `cron`, `every` and `runAt`."
)
EVERY_DESCRIPTION = (
    "Interval schedule: an ISO 8601 duration in weeks, days, hours, minutes (`PT90M`, `PT36H`, "
    "`P1D` = 24 h, `P1W`; at most 366 days; seconds such as `PT30S` only for admins; months "
    "and years are refused). Slots are elapsed time, `anchorAt` + k x `every` in UTC, not moved "
    "by DST. Set exactly one of `cron`, `every` and `runAt`."
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


class NotifyIn(NotifyPolicy):
    """Failure and recovery notices (camelCase only); null channels are not used."""

    model_config = ConfigDict(validate_by_alias=True, validate_by_name=False)

    webhook: str | None = Field(
        None,
        min_length=1,
        max_length=netguard.MAX_URL_LENGTH,
        description="URL that receives a signed JSON POST per notice (the same URL, host and "
        "SSRF rules as an httpRequest job under non-admin rules).",
        examples=["https://hooks.example.com/cron"],
    )

    @field_validator("webhook")
    @classmethod
    def _url_shape(cls, url: str | None) -> str | None:
        return None if url is None else netguard.check_url_shape(url)


PAUSE_AFTER_DESCRIPTION = (
    "Pause the job after this many consecutive failed slots (`pausedReason` says so); 0: never; "
    "omitted: CRON_DEFAULT_PAUSE_AFTER_FAILURES."
)
PauseAfterFailures = Annotated[
    int,
    Field(ge=0, le=MAX_PAUSE_AFTER_FAILURES, description=PAUSE_AFTER_DESCRIPTION, examples=[5]),
]
NOTIFY_DESCRIPTION = (
    "Notify the owner by email and/or webhook when the last attempt of a slot fails (at most "
    "once per CRON_NOTIFY_MIN_INTERVAL_SECONDS, later failures counted into the next notice), "
    "on the first success after a notified failure, and on an auto-pause."
)


class JobReplace(RequestModel):
    """A whole job (PUT): every omitted optional field takes its default."""

    name: Name
    type: JobType
    cron: Cron | None = Field(None, description=CRON_DESCRIPTION, examples=["0 8 * * 1-5"])
    every: Every | None = Field(None, description=EVERY_DESCRIPTION, examples=["PT90M"])
    run_at: Instant | None = Field(
        None, description=RUN_AT_DESCRIPTION, examples=["2026-12-24T18:00:00Z"]
    )
    start_at: Instant | None = Field(
        None, description=START_AT_DESCRIPTION, examples=["2026-12-01T00:00:00Z"]
    )
    end_at: Instant | None = Field(
        None, description=END_AT_DESCRIPTION, examples=["2026-12-31T00:00:00Z"]
    )
    max_runs: MaxRuns | None = Field(None, description=MAX_RUNS_DESCRIPTION, examples=[10])
    timezone: Timezone = "UTC"
    payload: Payload = Field(default_factory=dict)
    enabled: bool = True
    retry: RetryIn = Field(default_factory=RetryIn)
    timeout_seconds: int | None = Field(None, ge=1, description=TIMEOUT_DESCRIPTION, examples=[60])
    overlap_policy: OverlapPolicy = OverlapPolicy.SKIP
    misfire_policy: MisfirePolicy = MisfirePolicy.RUN_ONCE
    misfire_grace_seconds: GraceSeconds = 300
    notify: NotifyIn | None = Field(None, description=NOTIFY_DESCRIPTION)
    pause_after_failures: PauseAfterFailures | None = None
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
    run_at: Instant | None = Field(
        None,
        description="Switches the job to a one-off at this instant (clears `cron`, `every`).",
        examples=["2026-12-24T18:00:00Z"],
    )
    start_at: Instant | None = Field(
        None,
        description=f"{START_AT_DESCRIPTION} Here null clears the bound.",
        examples=["2026-12-01T00:00:00Z"],
    )
    end_at: Instant | None = Field(
        None,
        description=f"{END_AT_DESCRIPTION} Here null clears the bound.",
        examples=["2026-12-31T00:00:00Z"],
    )
    max_runs: MaxRuns | None = Field(
        None, description=f"{MAX_RUNS_DESCRIPTION} Here null clears it.", examples=[10]
    )
    timezone: Timezone | None = None
    payload: Payload | None = None
    enabled: bool | None = Field(None, description="false pauses the job, true resumes it.")
    retry: RetryIn | None = None
    timeout_seconds: int | None = Field(None, ge=1, description=TIMEOUT_DESCRIPTION, examples=[60])
    overlap_policy: OverlapPolicy | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_grace_seconds: GraceSeconds | None = None
    notify: NotifyIn | None = Field(
        None,
        description=NOTIFY_DESCRIPTION + " Replaced as a whole; send null channels to stop.",
    )
    pause_after_failures: PauseAfterFailures | None = None
    jitter_seconds: JitterSeconds | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in CLEARABLE_FIELDS:
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


class NotifyOut(ResponseModel):
    """Failure and recovery notices as stored."""

    email: str | None
    webhook: str | None
    on_failure: bool
    on_recovery: bool


class NotificationOut(ResponseModel):
    """The last notice the worker tried to deliver."""

    at: datetime = Field(description="When it was sent (or tried).")
    kind: str = Field(description="failure, recovery or paused.", examples=["failure"])
    ok: bool = Field(description="Whether every configured channel took it.")
    error: str | None = Field(
        description="Why a channel did not take it; null if delivered.",
        examples=["webhook: HTTP 503 Service Unavailable from hooks.example.com after 12 ms"],
    )


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
        "`startAt` if set, else set at creation and whenever `every` (or the schedule kind) "
        "changes; null for cron and one-off jobs.",
    )
    run_at: datetime | None = Field(
        description="One-off jobs: the single slot (UTC); null for cron and interval jobs.",
        examples=["2026-12-24T18:00:00Z"],
    )
    start_at: datetime | None = Field(
        description=START_AT_DESCRIPTION, examples=["2026-12-01T00:00:00Z"]
    )
    end_at: datetime | None = Field(
        description=END_AT_DESCRIPTION, examples=["2026-12-31T00:00:00Z"]
    )
    max_runs: int | None = Field(description=MAX_RUNS_DESCRIPTION, examples=[10])
    scheduled_success_count: int = Field(description=SUCCESS_COUNT_DESCRIPTION, examples=[3])
    timezone: str
    payload: dict[str, Any]
    enabled: bool
    status: JobStatus = Field(
        description="`completed`: no slot is left (past `endAt`, `maxRuns` reached, or a "
        "one-off that ran or was missed)."
    )
    next_run_at: datetime | None = Field(
        description="Next scheduled slot (UTC), within the bounds; null if paused or completed."
    )
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
    notify: NotifyOut | None = Field(description=NOTIFY_DESCRIPTION)
    pause_after_failures: int = Field(
        description="Consecutive failed slots after which the job pauses itself; 0: never.",
        examples=[5],
    )
    paused_reason: str | None = Field(
        description='Why the job is paused: "manual" or "auto: N consecutive failures"; null '
        "while enabled.",
        examples=["auto: 5 consecutive failures"],
    )
    failure_streak: int = Field(
        description="Consecutive slots whose last attempt failed (0 after a success or resume).",
        examples=[0],
    )
    last_notification: NotificationOut | None = Field(
        description="The last failure/recovery/pause notice and whether it was delivered."
    )
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
            run_at=job.run_at,
            start_at=job.start_at,
            end_at=job.end_at,
            max_runs=job.max_runs,
            scheduled_success_count=job.scheduled_success_count,
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
            notify=_notify_out(job.notify),
            pause_after_failures=job.pause_after_failures,
            paused_reason=job.paused_reason,
            failure_streak=job.failure_streak,
            last_notification=_notification_out(job.last_notification),
            jitter_seconds=job.jitter_seconds,
        )


def _notify_out(policy: NotifyPolicy | None) -> NotifyOut | None:
    return None if policy is None else NotifyOut.model_validate(policy.model_dump())


def _notification_out(record: NotificationRecord | None) -> NotificationOut | None:
    return None if record is None else NotificationOut.model_validate(record.model_dump())


class JobPage(ResponseModel):
    """One page of jobs in stable order."""

    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class RunNowOut(ResponseModel):
    """A queued manual run."""

    run_id: str
    job_id: str
    status: str = Field(examples=["pending"])
