"""A test-only, non-admin job type (`echo`) and a registry with it next to the built-ins."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.job_types import BUILTIN_TYPES
from shared.registry import JobType, JobTypeRegistry, PayloadContext, PayloadRuleError

ECHO = "echo"
# A message that makes the rule fail unexpectedly, to test how a server error is answered.
CRASH_MESSAGE = "crash-7f3e9b1c"


class EchoPayload(BaseModel):
    """A message, a repeat count and optional recipients (to exercise nested error paths)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    message: str = Field("hi", max_length=100)
    count: int = Field(1, ge=0, le=10)
    recipients: list[EmailStr] = Field(default_factory=list, max_length=5)
    extra: dict[str, object] = Field(default_factory=dict)


def refuse_forbidden(payload: EchoPayload, context: PayloadContext) -> None:
    """A settings-aware rule: non-admins may not echo the word 'forbidden'."""
    if payload.message == CRASH_MESSAGE:
        raise RuntimeError("internal detail: /srv/secret/path")
    if payload.message == "forbidden" and not context.is_admin:
        raise PayloadRuleError("message", "this message needs an admin")


ECHO_TYPE = JobType(
    name=ECHO,
    payload_model=EchoPayload,
    description="Test type: echoes a message.",
    rules=(refuse_forbidden,),
)


def registry_with_echo(disabled: tuple[str, ...] = ()) -> JobTypeRegistry:
    """The built-in types plus `echo`."""
    return JobTypeRegistry([*BUILTIN_TYPES, ECHO_TYPE], disabled=disabled)
