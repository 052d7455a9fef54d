"""The one start path against the server: forced interleavings of starts on several workers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from shared import jobs_repo
from shared import runs as run_records
from shared.db import JOBS, RUNS, Database
from shared.model import JobDocument
from shared.runs import RunReason, utc_now
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job, job_of, runs_of
from worker.claiming import Claimer, ClaimPass
from worker.scheduling import Scheduler
from worker.store import Start, WorkerStore, parse_run

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NOW = SLOT + timedelta(milliseconds=300)


class InterleavingStore(WorkerStore):
    """Holds every start write until all workers have read the job: the worst interleaving."""

    def __init__(self, db: Database, worker_id: str, barrier: asyncio.Barrier) -> None:
        super().__init__(db, worker_id)
        self.barrier = barrier

    async def start_runs(self, starts: Sequence[Start]) -> int:
        await self.barrier.wait()
        return await super().start_runs(starts)


def claimer(store: WorkerStore, settings: Settings, **overrides: Any) -> Claimer:
    return Claimer(store, worker_settings(settings, **overrides), asyncio.Event(), lambda: NOW)


async def skip_job_due_with_a_retry_and_a_run_now(db: Database) -> JobDocument:
    """An overlap `skip` job whose slot is due, with a retry and a run-now queued for now."""
    job = await create_job(db, "0 * * * * *", overlapPolicy="skip")
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"nextRunAt": SLOT}})
    earlier = SLOT - timedelta(minutes=1)
    failed = run_records.scheduled_run(job, earlier, now=earlier, start_deadline=None)
    failed.update(status="failed", endedAt=earlier)
    retry = run_records.retry_run(failed, not_before=SLOT, now=SLOT)
    manual = run_records.manual_run(job, now=SLOT)
    await db[RUNS].insert_many([failed, retry, manual])
    return job


# The slot queued pending (then acquired), or queued already acquired by its worker.
@pytest.mark.parametrize("held", [0, 1], ids=["queued-pending", "queued-acquired"])
async def test_a_slot_a_run_now_and_a_retry_claimed_at_once_start_one_run(
    db: Database, settings: Settings, held: int
) -> None:
    job = await skip_job_due_with_a_retry_and_a_run_now(db)
    barrier = asyncio.Barrier(3)
    stores = [InterleavingStore(db, f"w{index}", barrier) for index in range(3)]
    scheduling = Scheduler(stores[0], worker_settings(settings), asyncio.Event(), lambda: NOW)
    enqueued = await scheduling.enqueue_due(held)
    assert len(enqueued.fresh) == 1 and len(enqueued.carried) == held
    retry, manual = await runs_of(db, job.id, status="pending", trigger={"$ne": "schedule"})
    # Worker 0 claims the slot it just queued; workers 1 and 2 the retry and the run-now.
    passes: tuple[ClaimPass, ...] = await asyncio.gather(
        claimer(stores[0], settings).claim(10, enqueued.fresh, enqueued.jobs, enqueued.carried),
        claimer(stores[1], settings).claim(10, [parse_run(retry)], None),
        claimer(stores[2], settings).claim(10, [parse_run(manual)], None),
    )
    started = [item for result in passes for item in result.claimed]
    assert len(started) == 1, [item.run.trigger for item in started]
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["activeRunIds"] == [started[0].run_id]
    others = (
        await db[RUNS]
        .find({"jobId": job.id, "_id": {"$ne": started[0].run_id}, "createdAt": {"$gte": SLOT}})
        .to_list()
    )
    for run in others:
        if run["trigger"] == "retry":  # a retry waits for the run in progress
            assert (run["status"], run["workerId"]) == ("pending", None)
        else:
            assert (run["status"], run["error"]) == ("skipped", RunReason.OVERLAP.value)


async def test_two_run_nows_of_a_skip_job_on_two_workers_start_one(
    db: Database, settings: Settings
) -> None:
    """The case the old pending path lost: both read the idle job before either started."""
    job = await create_job(db, "0 0 1 1 *", overlapPolicy="skip")
    first, second = run_records.manual_run(job, now=SLOT), run_records.manual_run(job, now=SLOT)
    await db[RUNS].insert_many([first, second])
    barrier = asyncio.Barrier(2)
    stores = [InterleavingStore(db, f"w{index}", barrier) for index in range(2)]
    passes = await asyncio.gather(
        claimer(stores[0], settings).claim(10, [parse_run(first)]),
        claimer(stores[1], settings).claim(10, [parse_run(second)]),
    )
    assert sum(len(result.claimed) for result in passes) == 1
    stored = await job_of(db, job.id)
    assert stored is not None
    assert len(stored["activeRunIds"]) == 1


async def test_overlap_allow_starts_every_run_and_a_deleted_job_skips(
    db: Database, settings: Settings
) -> None:
    allowed = await create_job(db, "0 0 1 1 *", overlapPolicy="allow")
    runs = [run_records.manual_run(allowed, now=SLOT) for _ in range(3)]
    gone = await create_job(db, "0 0 1 1 *")
    orphan = run_records.manual_run(gone, now=SLOT)
    await db[RUNS].insert_many([*runs, orphan])
    await db[JOBS].delete_one({"_id": gone.id})
    store = WorkerStore(db, "w1")
    result = await claimer(store, settings).claim(10)
    assert sorted(item.run_id for item in result.claimed) == sorted(run["_id"] for run in runs)
    [skipped] = await runs_of(db, gone.id)
    assert (skipped["status"], skipped["error"]) == ("skipped", RunReason.JOB_DELETED.value)
    assert skipped["startedAt"] is None


async def test_a_run_claimed_after_its_start_deadline_is_missed(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 * * * *", misfirePolicy="skip")
    # The schedule stage has queued SLOT and moved the job on to the next slot.
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"nextRunAt": SLOT + timedelta(hours=1)}})
    late = run_records.scheduled_run(job, SLOT, now=SLOT, start_deadline=SLOT)
    await db[RUNS].insert_one(late)
    result = await claimer(WorkerStore(db, "w1"), settings).claim(10)
    assert result.claimed == []
    [missed] = await runs_of(db, job.id)
    assert (missed["status"], missed["error"]) == ("missed", RunReason.MISFIRE_SKIP.value)


async def test_a_queued_slot_of_a_paused_or_rescheduled_job_is_skipped_with_the_reason(
    db: Database, settings: Settings
) -> None:
    paused = await create_job(db, "0 * * * *", enabled=False)
    moved = await create_job(db, "30 * * * *")  # 08:00 is not one of its slots (any more)
    queued = [
        run_records.scheduled_run(job, SLOT, now=SLOT, start_deadline=None)
        for job in (paused, moved)
    ]
    await db[RUNS].insert_many(queued)
    result = await claimer(WorkerStore(db, "w1"), settings).claim(10)
    assert result.claimed == []
    [on_paused] = await runs_of(db, paused.id)
    [on_moved] = await runs_of(db, moved.id)
    assert (on_paused["status"], on_paused["error"]) == ("skipped", RunReason.PAUSED.value)
    assert (on_moved["status"], on_moved["error"]) == ("skipped", RunReason.RESCHEDULED.value)


def queued_retry(job: JobDocument, attempt: int = 2) -> dict[str, Any]:
    """A retry of `job` due now, as the finisher queues it."""
    failed = run_records.scheduled_run(job, SLOT, now=SLOT, start_deadline=None)
    failed["attempt"] = attempt - 1
    return run_records.retry_run(failed, not_before=utc_now(), now=utc_now())


async def test_pending_runs_are_claimed_once_and_refused_when_their_job_is_gone_or_paused(
    db: Database, settings: Settings
) -> None:
    kept = await create_job(db, "0 0 9 * * *")
    gone = await create_job(db, "0 0 9 * * *")
    paused = await create_job(db, "0 0 9 * * *", enabled=False)
    manual = await jobs_repo.queue_run_now(db, kept)
    orphan = await jobs_repo.queue_run_now(db, gone)
    paused_manual = await jobs_repo.queue_run_now(db, paused)
    retry = queued_retry(paused)
    await db[RUNS].insert_one(retry)
    await db[JOBS].delete_one({"_id": gone.id})
    workers = [
        Claimer(WorkerStore(db, name), worker_settings(settings), asyncio.Event())
        for name in ("w1", "w2")
    ]
    passes = await asyncio.gather(*(worker.claim(10) for worker in workers))
    claimed = sorted(str(item.run_id) for result in passes for item in result.claimed)
    assert claimed == sorted([str(manual), str(paused_manual)])  # a paused job may run now
    statuses = {run["_id"]: run for run in await db[RUNS].find({}).to_list()}
    assert (statuses[orphan]["status"], statuses[orphan]["error"]) == (
        "skipped",
        RunReason.JOB_DELETED.value,
    )
    refused = statuses[retry["_id"]]
    assert (refused["status"], refused["error"]) == ("skipped", RunReason.PAUSED.value)
    stored = await job_of(db, kept.id)
    assert stored is not None
    assert (stored["activeRunIds"], stored["status"]) == ([manual], "running")
    assert stored["nextRunAt"] == kept.next_run_at  # run-now leaves the schedule alone
    paused_job = await job_of(db, paused.id)
    assert paused_job is not None
    assert paused_job["status"] == "paused"


async def test_a_retry_of_a_busy_skip_job_waits_and_a_run_now_is_skipped(
    db: Database, settings: Settings
) -> None:
    busy = await create_job(db, "0 0 9 * * *", overlapPolicy="skip")
    manual = await jobs_repo.queue_run_now(db, busy)
    retry = queued_retry(busy)
    await db[RUNS].insert_one(retry)
    # A scheduled run of the job started after the run-now was queued.
    await db[JOBS].update_one({"_id": busy.id}, {"$set": {"activeRunIds": [ObjectId()]}})
    worker = Claimer(WorkerStore(db, "w1"), worker_settings(settings), asyncio.Event())
    assert (await worker.claim(10)).claimed == []
    skipped = await db[RUNS].find_one({"_id": manual})
    assert skipped is not None
    assert (skipped["status"], skipped["error"]) == ("skipped", RunReason.OVERLAP.value)
    waiting = await db[RUNS].find_one({"_id": retry["_id"]})
    assert waiting is not None
    assert (waiting["status"], waiting["workerId"]) == ("pending", None)  # back in the queue
    assert waiting["notBefore"] > utc_now()  # after its backoff


async def test_two_pending_runs_of_one_skip_job_in_one_pass_start_one(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 0 9 * * *", overlapPolicy="skip")
    first, second = queued_retry(job, 2), queued_retry(job, 3)
    await db[RUNS].insert_many([first, second])
    worker = Claimer(WorkerStore(db, "w1"), worker_settings(settings), asyncio.Event())
    assert len((await worker.claim(10)).claimed) == 1
    statuses = {run["_id"]: run["status"] async for run in db[RUNS].find({})}
    assert sorted(statuses[run["_id"]] for run in (first, second)) == ["pending", "running"]


class SlowStore(WorkerStore):
    """The start write comes back after more than a heartbeat (a database outage), and
    meanwhile another worker reaped one of the runs."""

    reap: Any = None

    async def start_runs(self, starts: Sequence[Start]) -> int:
        matched = await super().start_runs(starts)
        await self.db[RUNS].update_one({"_id": self.reap}, {"$set": {"status": "abandoned"}})
        return matched


async def test_runs_reaped_during_a_slow_pass_are_not_started(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 0 1 1 *", overlapPolicy="allow")
    kept, reaped = run_records.manual_run(job, now=SLOT), run_records.manual_run(job, now=SLOT)
    await db[RUNS].insert_many([kept, reaped])
    store = SlowStore(db, "w1")
    store.reap = reaped["_id"]
    fast = worker_settings(settings)
    moments = iter([0.0, fast.heartbeat_seconds + 1])
    worker = Claimer(store, fast, asyncio.Event())
    worker.monotonic = lambda: next(moments)  # the pass took longer than a heartbeat
    before = utc_now()
    result = await worker.claim(10)
    assert [item.run_id for item in result.claimed] == [kept["_id"]]
    run = await db[RUNS].find_one({"_id": kept["_id"]})
    assert run is not None
    assert run["leaseExpiresAt"] > before  # renewed for the start
