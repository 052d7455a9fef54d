"""`purgeSessions` (admin-only): delete app sessions inactive for a number of days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.registry import JobType
from shared.run_identity import RunIdentity, utc_text
from shared.settings import Settings

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


def preview(
    identity: RunIdentity, payload: PurgeSessionsPayload, settings: Settings
) -> dict[str, Any]:
    """Which sessions a run at its slot would delete (last seen before the cutoff)."""
    cutoff = identity.scheduled_for - timedelta(days=payload.inactive_days)
    return {
        "kind": "purgeSessions",
        "collection": settings.sessions_collection,
        "lastSeenField": settings.sessions_last_seen_field,
        "deletesLastSeenBefore": utc_text(cutoff),
    }


JOB_TYPE = JobType(
    name="purgeSessions",
    payload_model=PurgeSessionsPayload,
    description="Deletes sessions inactive for more than `inactiveDays` days, in bounded batches.",
    admin_only=True,
    preview=preview,
)
