"""Job types, schedule preview and health bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel
from api.schemas.jobs import Cron, Timezone

PREVIEW_MAX_COUNT = 100


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
    """A schedule to preview before saving it."""

    cron: Cron
    timezone: Timezone = "UTC"
    count: int = Field(10, ge=1, le=PREVIEW_MAX_COUNT, description="How many fire times.")


class FireTime(ResponseModel):
    """One fire time."""

    utc: datetime = Field(examples=["2026-11-23T07:00:00Z"])
    local: datetime = Field(
        description="The same instant as wall time in the zone, with its offset.",
        examples=["2026-11-23T08:00:00+01:00"],
    )


class PreviewOut(ResponseModel):
    """The next fire times of a schedule."""

    cron: str
    timezone: str
    fire_times: list[FireTime]


class Health(ResponseModel):
    """Liveness / readiness."""

    status: str = Field(examples=["ok"])
