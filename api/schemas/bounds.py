"""Body pieces of bounds and one-off jobs: `runAt`, `startAt`, `endAt`, `maxRuns`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, Field

# Instants a job accepts (as the preview's anchors): RFC 3339 with an offset, 1970..2999.
INSTANT_EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
INSTANT_LATEST: Final = datetime(3000, 1, 1, tzinfo=UTC)
MAX_RUNS_LIMIT: Final = 1_000_000
# A date-time text ends with its offset: `Z` or +hh:mm / -hh:mm (colon optional).
_OFFSET: Final = re.compile(r"[Tt ].*(?:[Zz]|[+-]\d{2}:?\d{2})$")

RUN_AT_DESCRIPTION: Final = (
    "One-off schedule: the single instant the job runs at (RFC 3339 with an offset, in the "
    "future when set). The job runs once, then its status is `completed`. Set exactly one of "
    "`cron`, `every` and `runAt`; bounds (`startAt`, `endAt`, `maxRuns`) do not apply."
)
START_AT_DESCRIPTION: Final = (
    "No slot before this instant (RFC 3339 with an offset). Interval jobs: the grid's anchor "
    "(slots at startAt + k x every). null: no lower bound."
)
END_AT_DESCRIPTION: Final = (
    "No slot after this instant (RFC 3339 with an offset, in the future when set, after "
    "`startAt`); after its last slot the job is `completed`. null: no upper bound."
)
MAX_RUNS_DESCRIPTION: Final = (
    "At most this many successful scheduled runs (a slot that succeeds on a retry counts "
    "once; run-now runs do not count); then the job is `completed`. null: no limit."
)
SUCCESS_COUNT_DESCRIPTION: Final = (
    "Scheduled slots that succeeded (one per slot, retries included), compared with `maxRuns`."
)


def _naive_refused(value: object) -> object:
    """Refuse naive date-times before pydantic parses them (a wall time names no instant)."""
    if isinstance(value, str) and value.strip() and not _has_offset(value.strip()):
        raise ValueError("must carry a UTC offset (e.g. 2026-11-23T07:00:00Z)")
    if isinstance(value, datetime) and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError("must carry a UTC offset (e.g. 2026-11-23T07:00:00Z)")
    return value


def _has_offset(text: str) -> bool:
    return _OFFSET.search(text) is not None


def _bounded(value: datetime) -> datetime:
    """UTC, whole seconds (slots are to the second), within 1970..2999."""
    problem = "must be between 1970 and 2999"
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # an offset pushes it past year 1 or 9999
        raise ValueError(problem) from None
    if not INSTANT_EARLIEST <= utc < INSTANT_LATEST:
        raise ValueError(problem)
    return utc.replace(microsecond=0)


# An RFC 3339 instant: an offset is required, stored in UTC to the second.
Instant = Annotated[datetime, BeforeValidator(_naive_refused), AfterValidator(_bounded)]
MaxRuns = Annotated[int, Field(ge=1, le=MAX_RUNS_LIMIT, examples=[10])]
