"""Backfill request and answer (admins)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from api.schemas.common import RequestModel, ResponseModel
from shared.backfill import MAX_BACKFILL_SLOTS


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset (e.g. 2026-11-01T00:00:00Z)")
    return value


class BackfillIn(RequestModel):
    """A past window whose slots to queue: `from` inclusive, `to` exclusive."""

    start: datetime = Field(
        alias="from",
        description="Start of the window (inclusive), RFC 3339 with an offset.",
        examples=["2026-11-01T00:00:00Z"],
    )
    end: datetime = Field(
        alias="to",
        description="End of the window (exclusive), RFC 3339 with an offset; not in the "
        f"future; at most {MAX_BACKFILL_SLOTS} slots after `from`.",
        examples=["2026-11-08T00:00:00Z"],
    )

    @field_validator("start", "end")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        return _aware(value)


class BackfillOut(ResponseModel):
    """How many of the window's slots were queued now and how many were queued before."""

    job_id: str = Field(description="The backfilled job.", examples=["6740a1f2c3d4e5f601234567"])
    slots: int = Field(description="Slots of the job's schedule in the window.", examples=[7])
    queued: int = Field(description="Slots queued by this request.", examples=[5])
    already_present: int = Field(
        description="Slots an earlier backfill queued already (each slot is queued once).",
        examples=[2],
    )
