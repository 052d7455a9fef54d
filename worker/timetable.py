"""When the worker next has work: earliest known due times, fed by lookups and change events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.db import Document
from shared.model import RunStatus

# Update events whose changed fields are all among these cannot make a job due sooner.
_IRRELEVANT_JOB_FIELDS = frozenset(
    {
        "status",
        "lastRunAt",
        "lastError",
        "lastDurationMs",
        "activeRunIds",
        "runCount",
        "failureCount",
        "updatedAt",
        "version",
        "name",
        "payload",
        "payloadByAdmin",
        "queuedRunId",
    }
)


@dataclass
class DueTime:
    """The earliest known due time of one kind of work (scheduled jobs, or pending runs).

    `at` None means "unknown: look now". `stale` means an event we could not interpret arrived:
    look the earliest time up again (bounded by `at`, so the lookup stays cheap).
    """

    wake: asyncio.Event
    at: datetime | None = None
    stale: bool = True
    _heard: datetime | None = field(default=None, repr=False)
    _forgotten: bool = field(default=False, repr=False)

    def heard(self, when: datetime) -> None:
        """Something becomes due at `when`."""
        if self._heard is None or when < self._heard:
            self._heard = when
        if self.at is None or when < self.at:
            self.at = when
            self.wake.set()

    def unknown(self) -> None:
        """Something changed in a way that may make work due sooner."""
        self.stale = True
        self.wake.set()

    def forget(self) -> None:
        """Nothing is known any more (resync): check at once."""
        self.at = None
        self.stale = True
        self._forgotten = True
        self.wake.set()

    def lookup_started(self) -> None:
        """A lookup begins: events from now on are kept, so the result cannot hide them."""
        self.stale = False
        self._heard = None
        self._forgotten = False

    def lookup_done(self, earliest: datetime) -> None:
        """The lookup found `earliest` (or the horizon when nothing is due before it)."""
        heard, self._heard = self._heard, None
        if self._forgotten:
            return  # a resync during the lookup: its answer may be outdated
        self.at = min(earliest, heard) if heard is not None else earliest

    def due(self, now: datetime) -> bool:
        """Whether a claim pass is due now."""
        return self.at is None or self.at <= now


class Timetable:
    """The two due times and the one event that wakes the run loop."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.jobs = DueTime(self.wake)
        self.pending = DueTime(self.wake)

    def resync(self) -> None:
        """Forget everything known (stream reopened without resuming)."""
        self.jobs.forget()
        self.pending.forget()

    def on_job_change(self, change: Document) -> None:
        """Interpret a `cron_jobs` change event; what cannot be interpreted triggers a lookup."""
        operation = change.get("operationType")
        if operation in ("insert", "replace"):
            document = change.get("fullDocument")
            if not isinstance(document, dict):
                self.jobs.unknown()
            elif document.get("enabled") is True:
                self._job_at(document.get("nextRunAt"))
        elif operation == "update":
            self._job_updated(change.get("updateDescription"))
        elif operation != "delete":  # drop, rename, dropDatabase: start over
            self.resync()

    def _job_updated(self, description: Any) -> None:
        if not isinstance(description, dict):
            # Servers that send no updateDescription (see the README): look again.
            self.jobs.unknown()
            return
        fields = description.get("updatedFields") or {}
        if isinstance(fields.get("nextRunAt"), datetime):
            self.jobs.heard(fields["nextRunAt"])
        elif {name.split(".")[0] for name in fields} - _IRRELEVANT_JOB_FIELDS or description.get(
            "removedFields"
        ):
            self.jobs.unknown()

    def _job_at(self, when: Any) -> None:
        if isinstance(when, datetime):
            self.jobs.heard(when)

    def on_run_change(self, change: Document) -> None:
        """Interpret a `cron_runs` change event (the stream only passes pending inserts)."""
        document = change.get("fullDocument")
        if change.get("operationType") != "insert" or not isinstance(document, dict):
            self.pending.unknown()
        elif document.get("status") == RunStatus.PENDING.value:
            when = document.get("notBefore") or document.get("createdAt")
            if isinstance(when, datetime):
                self.pending.heard(when)
            else:
                self.pending.unknown()
