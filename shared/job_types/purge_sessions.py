"""`purgeSessions` (admin-only): delete app sessions inactive for a number of days."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.registry import JobType

MAX_INACTIVE_DAYS = 3650


class PurgeSessionsPayload(BaseModel):
    """How long a session may stay inactive before it is deleted."""

    # Only the documented (alias) names: a Python name such as `sleep_seconds` is refused.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)

    inactive_days: int = Field(
        ge=1,
        le=MAX_INACTIVE_DAYS,
        strict=True,
        alias="inactiveDays",
        description="Delete sessions whose last activity is older than this many days.",
    )


JOB_TYPE = JobType(
    name="purgeSessions",
    payload_model=PurgeSessionsPayload,
    description="Deletes sessions inactive for more than `inactiveDays` days, in bounded batches.",
    admin_only=True,
)
