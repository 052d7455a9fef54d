"""After a slow claim pass: keep only the claimed runs whose lease is still ours."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from functools import partial
from typing import Final

import structlog

from shared.settings import Settings
from worker.backoff import persist
from worker.records import Claimed, utc_now
from worker.store import WorkerStore

LOST_BEFORE_START: Final = "lease lost before start"

log = structlog.get_logger("worker.claim")


async def keep_if_slow(
    store: WorkerStore,
    claimed: list[Claimed],
    began: float,
    settings: Settings,
    stop: asyncio.Event,
) -> list[Claimed]:
    """The claimed runs still ours, checked (and their leases renewed) after a slow pass.

    A pass held up by a database outage for longer than the lease may find its runs reaped by
    another worker (recorded `abandoned`, a retry queued): starting them would run the slot
    twice. Passes faster than a heartbeat cannot have lost a lease and skip the check.
    """
    if not claimed or time.monotonic() - began <= settings.heartbeat_seconds:
        return claimed
    ids = [item.run_id for item in claimed]
    until = utc_now() + timedelta(seconds=settings.lease_seconds)
    ours = await persist(partial(store.keep_ours, ids, until), what="check leases", stop=stop)
    for item in claimed:
        if item.run_id not in ours:
            log.warning("run.not_started", run_id=str(item.run_id), reason=LOST_BEFORE_START)
    return [item for item in claimed if item.run_id in ours]
