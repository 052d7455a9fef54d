"""Lease renewal: a loss is reported only when a run still executing was taken from us."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from bson import ObjectId
from structlog.testing import capture_logs

from shared.db import RUNS, Database, Document
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import job_of, runs_of
from tests.integration.worker.test_store import started
from worker.finisher import Finisher
from worker.heartbeat import Heartbeat, WorkerState
from worker.records import Claimed, utc_now
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


async def test_a_run_that_ended_without_its_job_write_is_settled_by_the_sweep(
    db: Database, settings: Settings
) -> None:
    store = WorkerStore(db, "w1")
    lost = await started(db, store, retry={"maxAttempts": 2, "backoffSeconds": 0})
    current = await started(db, store)
    long_ago = utc_now() - timedelta(minutes=5)
    # The reaper marked `lost` abandoned, then its worker died before writing the job side.
    await db[RUNS].update_one(
        {"_id": lost.run_id},
        {"$set": {"status": "abandoned", "endedAt": long_ago, "error": "lease expired"}},
    )
    beat = heartbeat(store, settings, [], set())
    await beat.sweep(utc_now())
    await beat.finisher.flush()
    job = await job_of(db, lost.job_id)
    assert job is not None
    assert job["activeRunIds"] == []
    assert (job["failureCount"], job["lastError"]) == (1, "lease expired")
    [retry] = await runs_of(db, lost.job_id, attempt=2)
    assert (retry["status"], retry["trigger"]) == ("pending", "retry")
    # A run still going is left alone.
    untouched = await job_of(db, current.job_id)
    assert untouched is not None
    assert untouched["activeRunIds"] == [current.run_id]


async def test_a_run_that_just_ended_is_left_to_its_own_worker(
    db: Database, settings: Settings
) -> None:
    store = WorkerStore(db, "w1")
    item = await started(db, store)
    await db[RUNS].update_one(
        {"_id": item.run_id}, {"$set": {"status": "succeeded", "endedAt": utc_now()}}
    )
    beat = heartbeat(store, settings, [], set())
    await beat.sweep(utc_now())
    assert len(beat.finisher) == 0


class FinishingStore(WorkerStore):
    """The run's own worker finishes it between the reaper's retry insert and its abandon."""

    def __init__(self, db: Database, worker_id: str, final_status: str) -> None:
        super().__init__(db, worker_id)
        self.final_status = final_status

    async def abandon_expired(
        self, run: Document, now: datetime, error: str, duration_ms: int | None
    ) -> bool:
        await self.runs.update_one({"_id": run["_id"]}, {"$set": {"status": self.final_status}})
        return await super().abandon_expired(run, now, error, duration_ms)


async def expired_run(db: Database) -> Claimed:
    """A run of a dead worker whose lease has just expired (attempts left)."""
    item = await started(db, WorkerStore(db, "dead"), retry={"maxAttempts": 3, "backoffSeconds": 0})
    await db[RUNS].update_one(
        {"_id": item.run_id}, {"$set": {"leaseExpiresAt": utc_now() - timedelta(seconds=1)}}
    )
    return item


async def test_the_reaper_queues_the_retry_before_the_run_is_final(
    db: Database, settings: Settings
) -> None:
    item = await expired_run(db)
    seen: list[int] = []

    class Observing(WorkerStore):
        async def abandon_expired(
            self, run: Document, now: datetime, error: str, duration_ms: int | None
        ) -> bool:
            seen.append(len(await runs_of(db, item.job_id, attempt=2)))
            return await super().abandon_expired(run, now, error, duration_ms)

    beat = heartbeat(Observing(db, "w1"), settings, [], set())
    await beat.reap(utc_now())
    assert seen == [1]  # the retry existed when the run became `abandoned`
    [run] = await runs_of(db, item.job_id, attempt=1)
    assert run["status"] == "abandoned"
    [retry] = await runs_of(db, item.job_id, attempt=2)
    assert retry["status"] == "pending"


@pytest.mark.parametrize(("owner_outcome", "retries"), [("succeeded", 0), ("failed", 1)])
async def test_a_run_its_owner_finished_meanwhile_keeps_a_retry_only_if_it_failed(
    db: Database, settings: Settings, owner_outcome: str, retries: int
) -> None:
    item = await expired_run(db)
    beat = heartbeat(FinishingStore(db, "w1", owner_outcome), settings, [], set())
    await beat.reap(utc_now())
    [run] = await runs_of(db, item.job_id, attempt=1)
    assert run["status"] == owner_outcome
    assert len(await runs_of(db, item.job_id, attempt=2)) == retries
    assert len(beat.finisher) == 0  # nothing of the abandon to write
