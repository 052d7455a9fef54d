"""Lease renewal: a loss is reported only when a run still executing was taken from us."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bson import ObjectId
from structlog.testing import capture_logs

from shared.db import RUNS, Database
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.test_store import started
from worker.finisher import Finisher
from worker.heartbeat import Heartbeat, WorkerState
from worker.records import utc_now
from worker.store import WorkerStore


class ClaimingStore(WorkerStore):
    """A claim pass starts another run while the lease renewal is on its way."""

    def __init__(self, db: Database, worker_id: str, executing: set[ObjectId]) -> None:
        super().__init__(db, worker_id)
        self.executing = executing

    async def renew_leases(self, run_ids: Sequence[ObjectId], until: datetime) -> int:
        kept = await super().renew_leases(run_ids, until)
        self.executing.add(ObjectId())
        return kept


def heartbeat(
    store: WorkerStore, settings: Settings, held: list[ObjectId], executing: set[ObjectId]
) -> Heartbeat:
    """A heartbeat holding `held`, with the handlers in `executing` running."""
    return Heartbeat(
        store,
        worker_settings(settings),
        WorkerState(store.worker_id, "w1", utc_now()),
        Finisher(store),
        held_runs=lambda: held,
        executing_runs=lambda: set(executing),
    )


async def test_a_run_started_during_the_renewal_is_no_lost_lease(
    db: Database, settings: Settings
) -> None:
    executing: set[ObjectId] = set()
    store = ClaimingStore(db, "w1", executing)
    first = await started(db, store)
    executing.add(first.run_id)
    beat = heartbeat(store, settings, [first.run_id], executing)
    with capture_logs() as logs:
        await beat.renew(utc_now())
    assert [line for line in logs if line["event"] == "lease.lost"] == []


async def test_a_run_reaped_by_another_worker_is_a_lost_lease(
    db: Database, settings: Settings
) -> None:
    store = WorkerStore(db, "w1")
    first = await started(db, store)
    await db[RUNS].update_one({"_id": first.run_id}, {"$set": {"status": "abandoned"}})
    beat = heartbeat(store, settings, [first.run_id], {first.run_id})
    with capture_logs() as logs:
        await beat.renew(utc_now())
    assert [(line["held"], line["renewed"]) for line in logs if line["event"] == "lease.lost"] == [
        (1, 0)
    ]
