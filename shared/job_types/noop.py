"""`noop`: an admin-only canary that does nothing, or waits, or fails on purpose."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.registry import JobType


class NoopPayload(BaseModel):
    """Optional wait and deliberate failures, for checking timeouts, retries and alerting."""

    # Only the documented (alias) names: a Python name such as `sleep_seconds` is refused.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)

    sleep_seconds: float = Field(
        0, ge=0, le=3600, alias="sleepSeconds", description="Wait this long, then succeed."
    )
    fail_attempts: int = Field(
        0,
        ge=0,
        le=10,
        alias="failAttempts",
        description="Fail attempts 1..N of each slot on purpose (0: never fail).",
    )


JOB_TYPE = JobType(
    name="noop",
    payload_model=NoopPayload,
    description="Does nothing (optionally waits or fails on purpose); a canary for operators.",
    admin_only=True,
)
