"""Backfill: queue a job's past slots of a window again, once per slot however often asked.

Each slot becomes a pending run with `trigger: backfill`, its real `scheduledFor` and the slot
key `backfill:<instant>`; the unique `(jobId, slot, attempt)` index keeps one per slot, so a
repeated (or concurrent) request queues only the slots not queued before. The worker starts
them through the one claim path: no misfire deadline, not superseded by later slots, waiting
(not skipped) behind a run in progress of an overlap `skip` job; they count on the job like
scheduled runs but never move its `nextRunAt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pymongo.errors import BulkWriteError

from shared.db import RUNS, Database
from shared.job_schedule import SlotSchedule
from shared.model import JobDocument
from shared.runs import backfill_run, utc_now

# Slots one request may queue.
MAX_BACKFILL_SLOTS: Final = 1000
DUPLICATE_KEY: Final = 11000


class WindowError(ValueError):
    """The requested window cannot be backfilled; `field` is `from` or `to`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill request found and did."""

    slots: int
    queued: int

    @property
    def already_present(self) -> int:
        """Slots queued by an earlier backfill (of any outcome since)."""
        return self.slots - self.queued


def window_slots(
    schedule: SlotSchedule, start: datetime, end: datetime, now: datetime
) -> list[datetime]:
    """The slots in [start, end), ascending; WindowError for a window with an instant without
    a UTC offset, not wholly past, empty, or of more than MAX_BACKFILL_SLOTS slots."""
    for field, moment in (("from", start), ("to", end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise WindowError(field, "must carry a UTC offset (e.g. 2026-11-01T00:00:00Z)")
    if start >= now:
        raise WindowError("from", "must be in the past (a backfill queues past slots)")
    if end > now:
        raise WindowError("to", "must not be in the future (at most now)")
    if start >= end:
        raise WindowError("to", "must be after `from`")
    # slots_between includes `end`: ask for one more than the cap, plus a slot at `end` itself.
    limit = MAX_BACKFILL_SLOTS + 2
    found = [slot for slot in schedule.slots_between(start, end, limit) if slot < end]
    if len(found) > MAX_BACKFILL_SLOTS:
        last_end = found[MAX_BACKFILL_SLOTS].isoformat().replace("+00:00", "Z")
        raise WindowError(
            "to",
            f"the window holds more than {MAX_BACKFILL_SLOTS} slots, the most one request "
            f"queues: end it at or before {last_end} and request the rest separately",
        )
    return found


async def queue_backfill(
    db: Database, job: JobDocument, slots: list[datetime], *, now: datetime | None = None
) -> BackfillResult:
    """Insert one pending backfill run per slot; slots queued before are left as they are."""
    now = now or utc_now()
    documents = [backfill_run(job, slot, now=now) for slot in slots]
    duplicates = 0
    if documents:
        try:
            await db[RUNS].insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if error.details.get("writeConcernErrors") or any(
                item.get("code") != DUPLICATE_KEY for item in errors
            ):
                raise
            duplicates = len(errors)
    return BackfillResult(slots=len(documents), queued=len(documents) - duplicates)
