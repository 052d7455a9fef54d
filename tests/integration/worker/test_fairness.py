"""Per-owner fairness through the real driver: small owners get into a crowded batch, and
`CRON_MAX_RUNNING_PER_OWNER` holds across workers (conditional slot documents)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared import runs as run_records
from shared.db import JOBS, OWNER_SLOTS, RUNS, Database, Document
from shared.model import JobDocument, RunStatus
from shared.settings import Settings
from tests.integration.worker.conftest import StartWorker, worker_settings
from tests.integration.worker.factory import create_job, cron_at, slot_in, wait_for
from worker.claiming import Claimer
from worker.fairness import OWNER_CAP_WAIT_SECONDS
from worker.outcomes import Finisher, conclude
from worker.recovery import Recovery
from worker.scheduling import Scheduler
from worker.store import WorkerStore

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NOW = SLOT + timedelta(milliseconds=300)
DEADLINE = SLOT + timedelta(seconds=60)


async def job_due_at_slot(db: Database, owner: str, **options: Any) -> JobDocument:
    """An hourly job whose 08:00 slot is queued (pending, with a start deadline)."""
    job = await create_job(db, "0 * * * *", owner=owner, overlapPolicy="allow", **options)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"nextRunAt": SLOT + timedelta(hours=1)}})
    await db[RUNS].insert_one(
        run_records.scheduled_run(job, SLOT, now=SLOT, start_deadline=DEADLINE)
    )
    return job


def capped(settings: Settings, cap: int, **overrides: Any) -> Settings:
    return worker_settings(settings, max_running_per_owner=cap, **overrides)


async def test_small_owners_get_into_a_batch_one_owner_fills(
    db: Database, settings: Settings
) -> None:
    for _ in range(40):
        await create_job(db, "0 * * * *", owner="big")
    small = [await create_job(db, "0 * * * *", owner=f"small-{n % 3}") for n in range(6)]
    await db[JOBS].update_many({}, {"$set": {"nextRunAt": SLOT}})
    store = WorkerStore(db, "w1")
    scheduler = Scheduler(store, worker_settings(settings, claim_batch_size=20), asyncio.Event())
    alone = await store.due_jobs(NOW, 20)
    assert len(alone) == 20  # one read alone may hold none of the small owners' jobs
    batch = await scheduler.read_due(NOW)
    assert {job.id for job in small} <= {job.id for job in batch}
    assert len({job.id for job in batch}) == len(batch)


async def test_the_owner_cap_holds_across_two_claimers(db: Database, settings: Settings) -> None:
    big = [await job_due_at_slot(db, "big") for _ in range(6)]
    small = await job_due_at_slot(db, "small")
    stores = [WorkerStore(db, f"w{n}", owner_slots=True) for n in range(2)]
    claimers = [Claimer(s, capped(settings, 2), asyncio.Event(), lambda: NOW) for s in stores]
    passes = await asyncio.gather(*(claimer.claim(10) for claimer in claimers))
    started = [item for result in passes for item in result.claimed]
    by_owner = sorted(item.job.owner_id for item in started)
    assert by_owner == ["big", "big", "small"]
    slots = {doc["_id"]: doc["holders"] async for doc in db[OWNER_SLOTS].find()}
    assert sorted(slots["big"]) == sorted(i.run_id for i in started if i.job.owner_id == "big")
    # The others are deferred, never dropped: back in the queue, their deadline lifted.
    waiting = (
        await db[RUNS]
        .find({"jobId": {"$in": [job.id for job in big]}, "status": "pending"})
        .to_list()
    )
    assert len(waiting) == 4
    later = NOW + timedelta(seconds=OWNER_CAP_WAIT_SECONDS)
    assert {(run["notBefore"], run["startDeadline"], run["workerId"]) for run in waiting} == {
        (later, None, None)
    }
    assert {result.deferred_until for result in passes} - {None} == {later}
    assert small.id in {item.job_id for item in started}

    # Runs that end give their slots back; the deferred ones then start, two at a time.
    finisher = Finisher(stores[0])
    for item in started:
        finisher.add(
            conclude(item.run, item.job, RunStatus.SUCCEEDED, started_at=NOW, ended_at=NOW)
        )
    await finisher.flush()
    assert (await db[OWNER_SLOTS].find_one({"_id": "big"}) or {})["holders"] == []
    after = Claimer(stores[1], capped(settings, 2), asyncio.Event(), lambda: later)
    second = await after.claim(10)
    assert [item.job.owner_id for item in second.claimed] == ["big", "big"]


async def test_runs_held_by_a_killed_worker_release_their_slots_in_the_sweep(
    db: Database, settings: Settings
) -> None:
    job = await job_due_at_slot(db, "big")
    over, running = ObjectId(), ObjectId()
    ended = run_records.scheduled_run(job, SLOT - timedelta(hours=1), now=SLOT, start_deadline=None)
    ended |= {"_id": over, "status": "abandoned", "endedAt": SLOT}
    live = run_records.scheduled_run(job, SLOT - timedelta(hours=2), now=SLOT, start_deadline=None)
    live |= {"_id": running, "status": "running", "workerId": "w9", "leaseExpiresAt": DEADLINE}
    await db[RUNS].insert_many([ended, live])
    gone = ObjectId()  # a listed run whose record no longer exists
    await db[OWNER_SLOTS].insert_one({"_id": "big", "holders": [over, running, gone]})
    store = WorkerStore(db, "w1", owner_slots=True)
    recovery = Recovery(store, capped(settings, 3), Finisher(store))
    await recovery.sweep_owner_slots()
    assert (await db[OWNER_SLOTS].find_one({"_id": "big"}) or {})["holders"] == [running]


def most_at_once(runs: list[Document]) -> int:
    """The most runs in progress at one instant (from their start and end times)."""
    edges = sorted(
        [(run["startedAt"], 1) for run in runs] + [(run["endedAt"], -1) for run in runs],
        key=lambda edge: (edge[0], edge[1]),  # an end before a start at the same instant
    )
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


async def test_two_workers_never_run_more_of_one_owner_than_the_cap(
    db: Database, start_worker: StartWorker
) -> None:
    cap, handler = 2, 0.6
    for _ in range(2):
        await start_worker(max_running_per_owner=cap)
    slot = slot_in(1.5)
    sleepy = {"sleepSeconds": handler}
    big = [await create_job(db, cron_at(slot), owner="big", payload=sleepy) for _ in range(6)]
    small = [await create_job(db, cron_at(slot), owner=f"small-{n}") for n in range(2)]

    async def all_done() -> list[Document]:
        done = await db[RUNS].find({"status": "succeeded"}).to_list()
        return done if len(done) == len(big) + len(small) else []

    rounds = len(big) / cap  # each round: the handler, then the deferral's wait at most
    within = 1.5 + rounds * (handler + OWNER_CAP_WAIT_SECONDS + 1) + 10
    runs = await wait_for(all_done, within, "every run (none dropped)", interval=0.2)
    big_runs = [run for run in runs if run["ownerId"] == "big"]
    assert most_at_once(big_runs) <= cap
    assert most_at_once(big_runs) == cap  # the cap is reached, so it was tested
    small_runs = [run for run in runs if run["ownerId"] != "big"]
    # Had they waited behind the big owner, they would have waited out a handler and a
    # deferral; they start at their slot.
    waited = timedelta(seconds=handler + OWNER_CAP_WAIT_SECONDS)
    assert all(run["startedAt"] - run["scheduledFor"] < waited for run in small_runs)
    assert await db[RUNS].count_documents({"status": {"$in": ["missed", "skipped"]}}) == 0
