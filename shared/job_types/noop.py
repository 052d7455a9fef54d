"""`noop`: an admin-only canary that does nothing, or waits, or fails on purpose."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.registry import JobType
from shared.run_identity import RunIdentity
from shared.settings import Settings


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


def preview(identity: RunIdentity, payload: NoopPayload, settings: Settings) -> dict[str, Any]:
    """What the canary would do: wait, then fail the first `failAttempts` attempts or succeed."""
    return {
        "kind": "noop",
        "sleepSeconds": payload.sleep_seconds,
        "failAttempts": payload.fail_attempts,
        "outcome": "fails" if identity.attempt <= payload.fail_attempts else "succeeds",
    }


JOB_TYPE = JobType(
    name="noop",
    payload_model=NoopPayload,
    description="Does nothing (optionally waits or fails on purpose); a canary for operators.",
    admin_only=True,
    preview=preview,
)
