"""Shared body pieces: the error shape and the camelCase base models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ResponseModel(BaseModel):
    """Response bodies: camelCase JSON, built from Python names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(BaseModel):
    """Request bodies: camelCase only, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        validate_by_alias=True,
        validate_by_name=False,
    )


class FieldError(ResponseModel):
    """One invalid field and why."""

    field: str = Field(
        description="Dotted path of the field, e.g. `cron`, `payload.to[1]`.",
        examples=["payload.to[1]"],
    )
    message: str = Field(examples=["value is not a valid email address"])


class Problem(ResponseModel):
    """The body of every 4xx (and 5xx) answer."""

    status: int = Field(description="The HTTP status code.", examples=[422])
    title: str = Field(description="The status phrase.", examples=["Unprocessable Content"])
    detail: str = Field(
        description="A human-readable explanation.",
        examples=["cron: minute field: 61 is out of range 0-59"],
    )
    errors: list[FieldError] = Field(
        default_factory=list, description="For validation failures: each offending field."
    )
