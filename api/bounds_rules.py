"""The rules of bounds and one-off jobs: `runAt`, `startAt`, `endAt`, `maxRuns` (422s).

An instant is refused for being in the past only when the write sets it (a job whose stored
`endAt` or `runAt` has passed can still be renamed: it simply stays `completed`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from api.errors import field_error
from api.schemas.common import FieldError
from shared.bounds import bounded, next_or_none
from shared.job_schedule import SlotSchedule

BOUND_FIELDS = (("startAt", "start_at"), ("endAt", "end_at"), ("maxRuns", "max_runs"))


class Bounded(Protocol):
    """What the rules read: a job spec, or a preview request."""

    @property
    def run_at(self) -> datetime | None: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def end_at(self) -> datetime | None: ...
    @property
    def max_runs(self) -> int | None: ...


def check_bounds(
    spec: Bounded, schedule: SlotSchedule | None, before: Bounded | None, now: datetime
) -> list[FieldError]:
    """The bound and one-off errors of `spec` (`before`: the stored job, for an edit)."""
    if spec.run_at is not None:
        errors = [
            field_error(name, "does not apply to a one-off job (runAt): it runs once")
            for name, attribute in BOUND_FIELDS
            if getattr(spec, attribute) is not None
        ]
        if _sets(spec, before, "run_at") and spec.run_at <= now:
            errors.append(field_error("runAt", "must be in the future"))
        return errors
    if spec.end_at is None:
        return []
    if spec.start_at is not None and spec.end_at <= spec.start_at:
        return [field_error("endAt", "must be after startAt")]
    if not _sets(spec, before, "end_at"):
        return []
    if spec.end_at <= now:
        return [field_error("endAt", "must be in the future")]
    if (
        schedule is not None
        and next_or_none(bounded(schedule, spec.start_at, spec.end_at), now) is None
    ):
        return [field_error("endAt", "no slot of the schedule falls before endAt")]
    return []


def _sets(spec: Bounded, before: Bounded | None, attribute: str) -> bool:
    """Whether this write sets the field (a new job, or a changed value)."""
    return before is None or getattr(before, attribute) != getattr(spec, attribute)
