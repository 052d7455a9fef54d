"""Leases and recovery: lost leases reported truthfully, dead workers and expired leases reaped,
bookkeeping left behind by killed workers swept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from bson import ObjectId
from structlog.testing import capture_logs

from shared.db import RUNS, WORKERS, Database
from shared.runs import RunReason, utc_now
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import job_of, runs_of
from tests.integration.worker.test_store import started
from worker.claiming import Claimed
from worker.leases import Leases, RunBook, WorkerState
from worker.outcomes import Finisher
from worker.recovery import Recovery
from worker.store import RunView, WorkerStore


class ClaimingStore(WorkerStore):
    """A claim pass starts another run while the lease renewal is on its way."""

    def __init__(self, db: Database, worker_id: str, executing: set[ObjectId]) -> None:
        super().__init__(db, worker_id)
        self.executing = executing

    async def extend_run_leases(self, run_ids: Sequence[ObjectId], until: datetime) -> int:
        kept = await super().extend_run_leases(run_ids, until)
        self.executing.add(ObjectId())
        return kept


class Book(RunBook):
    """Holds `held`, with the handlers in `executing` running."""

    def __init__(self, store: WorkerStore, held: list[ObjectId], executing: set[ObjectId]) -> None:
        super().__init__(Finisher(store))
        self._held = held
        self._executing = executing

    def held(self) -> list[ObjectId]:
        return self._held

    def executing_ids(self) -> set[ObjectId]:
        return set(self._executing)


class Beat:
    """The heartbeat's two halves, as the runner drives them."""

    def __init__(self, leases: Leases, recovery: Recovery) -> None:
        self.leases = leases
        self.recovery = recovery
        self.finisher = recovery.finisher
        self.renew = leases.renew
        self.reap = recovery.reap
        self.sweep = recovery.sweep


def heartbeat(
    store: WorkerStore, settings: Settings, held: list[ObjectId], executing: set[ObjectId]
) -> Beat:
    """A heartbeat holding `held`, with the handlers in `executing` running."""
    fast = worker_settings(settings)
    book = Book(store, held, executing)
    state = WorkerState(store.worker_id, "w1", utc_now())
    return Beat(Leases(store, fast, state, book), Recovery(store, fast, book.finisher))


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

    async def reap_run(
        self, run: RunView, now: datetime, error: str, duration_ms: int | None
    ) -> bool:
        await self.runs.update_one({"_id": run.id}, {"$set": {"status": self.final_status}})
        return await super().reap_run(run, now, error, duration_ms)


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
        async def reap_run(
            self, run: RunView, now: datetime, error: str, duration_ms: int | None
        ) -> bool:
            seen.append(len(await runs_of(db, item.job_id, attempt=2)))
            return await super().reap_run(run, now, error, duration_ms)

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


async def test_runs_of_a_worker_that_stopped_beating_are_reaped_before_their_lease_expires(
    db: Database, settings: Settings
) -> None:
    """Chaos finding 2: a SIGKILLed worker is noticed by its missing heartbeats."""
    doomed = WorkerStore(db, "doomed")
    item = await started(db, doomed, retry={"maxAttempts": 2, "backoffSeconds": 60})
    run = await db[RUNS].find_one({"_id": item.run_id})
    assert run is not None
    assert run["leaseExpiresAt"] > utc_now() + timedelta(seconds=20)  # far from expiring
    beat = heartbeat(WorkerStore(db, "rescuer"), settings, [], set())
    silent = beat.recovery.dead_after + timedelta(seconds=1)
    await db[WORKERS].insert_one({"_id": "doomed", "name": "doomed", "lastSeenAt": utc_now()})
    await beat.reap(utc_now())
    assert (await runs_of(db, item.job_id))[0]["status"] == "running"  # still beating: alive
    await db[WORKERS].update_one({"_id": "doomed"}, {"$set": {"lastSeenAt": utc_now() - silent}})
    await beat.reap(utc_now())
    abandoned, retry = await runs_of(db, item.job_id)
    assert (abandoned["status"], abandoned["error"]) == (
        "abandoned",
        f"{RunReason.WORKER_DEAD.value} (doomed)",
    )
    # Its handler did not fail, its worker stopped: the retry is due at once, not after 60 s.
    assert (retry["status"], retry["attempt"]) == ("pending", 2)
    assert retry["notBefore"] <= utc_now()
