"""Leases: the runs this worker holds, their renewal, and the worker's own heartbeat document."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from datetime import datetime, timedelta

import structlog
from bson import ObjectId

from shared import __version__
from shared.runs import utc_now
from shared.settings import Settings
from worker.outcomes import Finisher
from worker.store import WorkerStore

log = structlog.get_logger("worker.leases")


@dataclasses.dataclass
class WorkerState:
    """What the heartbeat reports about this process (fields of its `cron_workers` document)."""

    worker_id: str
    name: str
    started_at: datetime
    mode: str = "streams"
    runs_in_flight: int = 0


class RunBook:
    """The runs this worker holds a lease on: executing handlers, and finished-but-unwritten."""

    def __init__(self, finisher: Finisher) -> None:
        self.finisher = finisher
        self.executing: dict[ObjectId, asyncio.Task[None]] = {}

    def held(self) -> list[ObjectId]:
        """Runs whose lease must be kept: executing, or finished but not yet written."""
        return list(dict.fromkeys([*self.executing, *self.finisher.unwritten_run_ids()]))

    def executing_ids(self) -> set[ObjectId]:
        """Runs whose handler is executing now."""
        return set(self.executing)

    def __len__(self) -> int:
        return len(self.executing)


class Leases:
    """Every heartbeat: one lease renewal (`update_many`) and one worker upsert."""

    def __init__(
        self, store: WorkerStore, settings: Settings, state: WorkerState, book: RunBook
    ) -> None:
        self.store = store
        self.state = state
        self.book = book
        self.lease = timedelta(seconds=settings.lease_seconds)

    async def renew(self, now: datetime) -> None:
        """Extend the lease of every run this worker holds; log the ones another worker took."""
        held = self.book.held()
        if not held:
            return
        executing = self.book.executing_ids()
        kept = await self.store.extend_run_leases(held, now + self.lease)
        # Finished runs may be written meanwhile and new ones start, so only a shortfall below
        # the handlers executing before and after the renewal proves a loss: expired during an
        # outage (or reaped as its worker looked dead) and reaped by another worker.
        still_executing = executing & self.book.executing_ids()
        if kept < len(still_executing):
            ours = await self.store.runs_still_ours(list(still_executing))
            lost = sorted(str(run_id) for run_id in still_executing - ours)
            if lost:
                log.warning("lease.lost", held=len(held), renewed=kept, run_ids=lost)

    async def report(self, now: datetime, **extra: object) -> None:
        """Upsert this worker's document in `cron_workers` (see docs/design.md)."""
        self.state.runs_in_flight = len(self.book)
        await self.store.beat(
            {
                "name": self.state.name,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "version": __version__,
                "startedAt": self.state.started_at,
                # Written when the beat goes out, not when it began (a slow renewal before it).
                "lastSeenAt": utc_now(),
                "runsInFlight": self.state.runs_in_flight,
                "mode": self.state.mode,
                **extra,
            }
        )
