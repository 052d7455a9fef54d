"""Job types, schedule preview and health bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator

from api.schemas.bounds import (
    END_AT_DESCRIPTION,
    MAX_RUNS_DESCRIPTION,
    RUN_AT_DESCRIPTION,
    START_AT_DESCRIPTION,
    Instant,
    MaxRuns,
)
from api.schemas.common import RequestModel, ResponseModel
from api.schemas.jobs import (
    CRON_DESCRIPTION,
    EVERY_DESCRIPTION,
    Cron,
    Every,
    JitterSeconds,
    Timezone,
)

PREVIEW_MAX_COUNT = 100
# Anchors a preview accepts (a job's own anchor is its creation or last edit).
ANCHOR_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
ANCHOR_LATEST = datetime(3000, 1, 1, tzinfo=UTC)


class TemplateOut(ResponseModel):
    """One template a payload may name, with what its `params` need."""

    name: str = Field(examples=["digest"])
    params_schema: dict[str, Any] = Field(
        description="JSON Schema of `payload.params` for this template (required and optional)."
    )


class JobTypeOut(ResponseModel):
    """A whitelisted job type."""

    name: str = Field(examples=["sendEmail"])
    description: str
    admin_only: bool
    payload_schema: dict[str, Any] = Field(description="JSON Schema of the payload.")
    templates: list[TemplateOut] | None = Field(
        None, description="sendEmail: each `payload.template` and its params; null otherwise."
    )


class JobTypeList(ResponseModel):
    """Every enabled job type."""

    items: list[JobTypeOut]


class PreviewIn(RequestModel):
    """A schedule to preview before saving it: exactly one of `cron`, `every` and `runAt`,
    with optional bounds."""

    cron: Cron | None = Field(None, description=CRON_DESCRIPTION, examples=["0 8 * * *"])
    every: Every | None = Field(None, description=EVERY_DESCRIPTION, examples=["PT90M"])
    run_at: Instant | None = Field(
        None, description=RUN_AT_DESCRIPTION, examples=["2026-12-24T18:00:00Z"]
    )
    anchor_at: datetime | None = Field(
        None,
        description="`every` only: the grid's origin (default: `startAt`, else now, as if the "
        "job were created now; a job's own `anchorAt` previews its current grid).",
    )
    start_at: Instant | None = Field(
        None, description=START_AT_DESCRIPTION, examples=["2026-12-01T00:00:00Z"]
    )
    end_at: Instant | None = Field(
        None, description=END_AT_DESCRIPTION, examples=["2026-12-31T00:00:00Z"]
    )
    max_runs: MaxRuns | None = Field(
        None,
        description=f"{MAX_RUNS_DESCRIPTION} The preview shows at most this many fire times.",
        examples=[10],
    )
    timezone: Timezone = "UTC"
    count: int = Field(10, ge=1, le=PREVIEW_MAX_COUNT, description="How many fire times.")
    jitter_seconds: JitterSeconds = 0
    job_id: str | None = Field(
        None,
        pattern="^[0-9a-f]{24}$",
        description="With `jitterSeconds`: the job whose jittered starts to show (a slot's "
        "offset derives from the job's id and the slot).",
        examples=["6740a1f2c3d4e5f601234567"],
    )

    @field_validator("anchor_at")
    @classmethod
    def _bounded_anchor(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset (e.g. 2026-11-23T07:00:00Z)")
        problem = "must be between 1970 and 2999"
        try:
            utc = value.astimezone(UTC)
        except OverflowError:  # an offset pushes it past year 1 or 9999
            raise ValueError(problem) from None
        if not ANCHOR_EARLIEST <= utc < ANCHOR_LATEST:
            raise ValueError(problem)
        return utc


class FireTime(ResponseModel):
    """One fire time."""

    utc: datetime = Field(examples=["2026-11-23T07:00:00Z"])
    local: datetime = Field(
        description="The same instant as wall time in the zone, with its offset.",
        examples=["2026-11-23T08:00:00+01:00"],
    )
    starts_at: datetime | None = Field(
        None,
        description="When the slot starts (UTC): `utc` plus the job's jitter offset for this "
        "slot; `utc` itself without jitter; null with `jitterSeconds` but no `jobId` (the "
        "offset depends on the job's id).",
        examples=["2026-11-23T07:00:17.250Z"],
    )


class PreviewOut(ResponseModel):
    """The next fire times of a schedule."""

    cron: str | None
    every: str | None
    run_at: datetime | None = Field(description="`runAt` only: the single slot (UTC).")
    anchor_at: datetime | None = Field(description="`every` only: the anchor used (UTC).")
    start_at: datetime | None = Field(description="The lower bound used (UTC), if any.")
    end_at: datetime | None = Field(description="The upper bound used (UTC), if any.")
    timezone: str
    fire_times: list[FireTime] = Field(
        description="At most `count`; fewer (or none) where the bounds, `maxRuns` or a "
        "one-off end the schedule."
    )


class Health(ResponseModel):
    """Liveness / readiness."""

    status: str = Field(examples=["ok"])
