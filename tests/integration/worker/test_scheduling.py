"""Schedule passes then claim passes against the server, as the runner chains them: once per
slot, races, missed slots, misfires, DST, and jobs edited while their slot is being claimed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database
from shared.model import JobDocument
from shared.runs import RunReason
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job, job_of, runs_of
from worker.claiming import Claimed, Claimer, ClaimPass
from worker.scheduling import Enqueued, Scheduler
from worker.store import JobView, Start, WorkerStore

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


class Node:
    """One worker's schedule and claim stages on a fixed clock (0.3 s after SLOT by default)."""

    def __init__(
        self, db: Database, settings: Settings, store: WorkerStore, **overrides: Any
    ) -> None:
        clock = overrides.pop("clock", fixed(SLOT + timedelta(milliseconds=300)))
        tuned = worker_settings(settings, **overrides)
        self.store = store
        self.scheduler = Scheduler(store, tuned, asyncio.Event(), clock)
        self.claimer = Claimer(store, tuned, asyncio.Event(), clock)

    async def tick(self, capacity: int = 32) -> tuple[Enqueued, ClaimPass]:
        """What the runner does in one tick: queue due slots (up to `capacity` of them acquired
        by this worker as they are queued), claim (fresh first)."""
        enqueued = await self.scheduler.enqueue_due(capacity)
        _, claimed = await asyncio.gather(
            self.scheduler.advance(enqueued.advances),
            self.claimer.claim(capacity, enqueued.fresh, enqueued.jobs, enqueued.carried),
        )
        await self.scheduler.advance(enqueued.uncarried(claimed.advanced))
        return enqueued, claimed

    async def started(self, capacity: int = 32) -> list[Claimed]:
        """One tick plus a queue pass; every run started."""
        _, first = await self.tick(capacity)
        second = await self.claimer.claim(capacity)
        return first.claimed + second.claimed


def node(db: Database, settings: Settings, name: str, **overrides: Any) -> Node:
    store = overrides.pop("store", None) or WorkerStore(db, name)
    return Node(db, settings, store, **overrides)


async def make_due(db: Database, job_id: ObjectId, next_run_at: datetime) -> None:
    """Pretend the job has been waiting since `next_run_at` (a worker-owned field)."""
    await db[JOBS].update_one({"_id": job_id}, {"$set": {"nextRunAt": next_run_at}})


async def due_every_second_jobs(db: Database, count: int) -> list[JobDocument]:
    jobs = [await create_job(db, "* * * * * *", overlapPolicy="allow") for _ in range(count)]
    for job in jobs:
        await make_due(db, job.id, SLOT)
    return jobs


async def test_two_racing_workers_start_each_slot_once(db: Database, settings: Settings) -> None:
    jobs = await due_every_second_jobs(db, 40)
    first, other = node(db, settings, "w1"), node(db, settings, "w2")
    started = await asyncio.gather(first.started(), other.started())
    claimed = [item for items in started for item in items]
    assert sorted(item.job_id for item in claimed) == sorted(job.id for job in jobs)
    runs = await db[RUNS].find({"scheduledFor": SLOT}).to_list()
    assert Counter(run["jobId"] for run in runs) == Counter({job.id: 1 for job in jobs})
    for job in jobs:
        stored = await job_of(db, job.id)
        assert stored is not None
        assert stored["nextRunAt"] > SLOT


async def test_a_slot_queued_by_a_dead_worker_runs_once_elsewhere(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)

    dead = node(db, settings, "dead")
    await dead.scheduler.enqueue_due()  # then killed: no advance, no claim
    [item] = await node(db, settings, "w2").started()
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] == SLOT + timedelta(seconds=1)
    [run] = await runs_of(db, job.id)
    assert (run["_id"], run["workerId"], run["status"]) == (item.run_id, "w2", "running")


class EditingStore(WorkerStore):
    """Right after reading the due jobs, a client pauses or deletes each of them."""

    def __init__(self, db: Database, worker_id: str, action: str) -> None:
        super().__init__(db, worker_id)
        self.action = action

    async def due_jobs(
        self, now: datetime, limit: int, exclude_owners: Iterable[str] = ()
    ) -> list[JobView]:
        jobs = await super().due_jobs(now, limit, exclude_owners)
        for job in jobs:
            if self.action == "delete":
                await jobs_repo.delete_job(self.db, job.id, now=now)
            else:
                await jobs_repo.set_enabled(self.db, job.id, enabled=False, now=now)
        return jobs


async def test_a_job_paused_or_deleted_during_the_pass_records_its_slot_and_does_not_run(
    db: Database, settings: Settings
) -> None:
    expected = {"pause": RunReason.PAUSED.value, "delete": RunReason.JOB_DELETED.value}
    for action, reason in expected.items():
        job = await create_job(db, "* * * * * *")
        await make_due(db, job.id, SLOT)
        worker = node(db, settings, "w1", store=EditingStore(db, "w1", action))
        assert await worker.started() == []
        [run] = await runs_of(db, job.id)
        assert (run["scheduledFor"], run["status"], run["error"]) == (SLOT, "skipped", reason)


class OverlappingStore(WorkerStore):
    """Another worker starts a run of each job right after this one read it."""

    async def due_jobs(
        self, now: datetime, limit: int, exclude_owners: Iterable[str] = ()
    ) -> list[JobView]:
        jobs = await super().due_jobs(now, limit, exclude_owners)
        for job in jobs:
            await self.db[JOBS].update_one(
                {"_id": job.id}, {"$addToSet": {"activeRunIds": ObjectId()}}
            )
        return jobs


async def test_overlap_skip_holds_when_another_worker_starts_a_run_meanwhile(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *", overlapPolicy="skip")
    await make_due(db, job.id, SLOT)
    assert await node(db, settings, "w1", store=OverlappingStore(db, "w1")).started() == []
    [run] = await runs_of(db, job.id)
    assert (run["status"], run["error"], run["scheduledFor"]) == (
        "skipped",
        RunReason.OVERLAP.value,
        SLOT,
    )
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] > SLOT


async def test_only_the_latest_due_slot_runs_and_the_rest_are_recorded_missed(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *", overlapPolicy="allow")
    start = SLOT - timedelta(seconds=10)
    await make_due(db, job.id, start)
    [item] = await node(db, settings, "w1", max_missed_records=4).started()
    runs = await runs_of(db, job.id)
    missed = [run for run in runs if run["status"] == "missed"]
    assert [run["scheduledFor"] for run in missed] == [
        start + timedelta(seconds=n) for n in range(5)
    ]
    assert [run["error"] for run in missed[:4]] == [RunReason.SUPERSEDED.value] * 4
    summary = missed[4]
    assert (summary["missedCount"], summary["error"]) == (6, RunReason.SUMMARISED.value)
    assert item.run.scheduled_for == SLOT
    assert (runs[-1]["_id"], runs[-1]["status"]) == (item.run_id, "running")


async def test_misfire_run_once_runs_the_late_slot_and_skip_records_it_missed(
    db: Database, settings: Settings
) -> None:
    hourly = "0 0 * * * *"
    run_once = await create_job(db, hourly, misfirePolicy="runOnce", misfireGraceSeconds=300)
    skip = await create_job(db, hourly, misfirePolicy="skip")
    too_late = await create_job(db, hourly, misfirePolicy="runOnce", misfireGraceSeconds=30)
    for job in (run_once, skip, too_late):
        await make_due(db, job.id, SLOT)
    late = fixed(SLOT + timedelta(seconds=90))
    worker = node(db, settings, "w1", misfire_threshold_seconds=60, clock=late)
    assert [item.job_id for item in await worker.started()] == [run_once.id]
    [skipped] = await runs_of(db, skip.id)
    assert (skipped["status"], skipped["error"]) == ("missed", RunReason.MISFIRE_SKIP.value)
    [expired] = await runs_of(db, too_late.id)
    assert (expired["status"], expired["error"]) == ("missed", RunReason.MISFIRE_GRACE.value)


async def test_misfire_skip_applies_to_a_job_firing_every_minute(
    db: Database, settings: Settings
) -> None:
    """Chaos finding 3: 20 s late is under the 60 s threshold but a third of the interval."""
    job = await create_job(db, "0 * * * * *", misfirePolicy="skip")
    await make_due(db, job.id, SLOT)
    late = node(db, settings, "w1", clock=fixed(SLOT + timedelta(seconds=20)))
    assert await late.started() == []
    [missed] = await runs_of(db, job.id)
    assert (missed["status"], missed["error"]) == ("missed", RunReason.MISFIRE_SKIP.value)
    # Within a tenth of its interval (6 s) a slot is on time and runs: the next one does.
    prompt = node(db, settings, "w1", clock=fixed(SLOT + timedelta(minutes=1, seconds=5)))
    [item] = await prompt.started()
    assert item.run.scheduled_for == SLOT + timedelta(minutes=1)


async def test_next_run_after_a_run_is_dst_correct(db: Database, settings: Settings) -> None:
    # 09:00 Berlin on 2026-03-28 is 08:00Z; after the spring-forward night it is 07:00Z.
    job = await create_job(db, "0 9 * * *", timezone="Europe/Berlin")
    slot = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    await make_due(db, job.id, slot)
    worker = node(db, settings, "w1", clock=fixed(slot + timedelta(milliseconds=300)))
    [item] = await worker.started()
    assert item.run.scheduled_for == slot
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


async def test_a_job_whose_schedule_cannot_be_evaluated_is_parked(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"cron": "61 * * * *", "nextRunAt": SLOT}})
    assert await node(db, settings, "w1").started() == []
    stored = await job_of(db, job.id)
    assert stored is not None
    assert (stored["nextRunAt"], stored["status"]) == (None, "failed")
    assert stored["lastError"].startswith("invalid schedule: ")


class CountingStore(WorkerStore):
    """Counts the due-job reads and the run acquisitions."""

    reads = 0
    acquires = 0

    def __init__(self, db: Database, worker_id: str) -> None:
        super().__init__(db, worker_id)
        self.advanced: list[ObjectId] = []

    async def due_jobs(
        self, now: datetime, limit: int, exclude_owners: Iterable[str] = ()
    ) -> list[JobView]:
        self.reads += 1
        return await super().due_jobs(now, limit, exclude_owners)

    async def acquire_runs(self, *args: Any) -> Any:
        self.acquires += 1
        return await super().acquire_runs(*args)

    async def advance_jobs(self, advances: Sequence[Any]) -> int:
        self.advanced.extend(advance.job_id for advance in advances)
        return await super().advance_jobs(advances)


async def test_a_herd_is_queued_per_batch_and_claimed_over_several_passes(
    db: Database, settings: Settings
) -> None:
    jobs = await due_every_second_jobs(db, 25)
    store = CountingStore(db, "w1")
    worker = node(db, settings, "w1", store=store, claim_batch_size=20)
    first, second = await worker.tick(8), await worker.tick(8)
    assert (len(first[0].fresh), first[0].more) == (20, True)
    assert (len(second[0].fresh), second[0].more) == (5, False)
    passes = [first[1], second[1]] + [await worker.claimer.claim(8) for _ in range(3)]
    assert [len(result.claimed) for result in passes] == [8, 5, 8, 4, 0]
    # One read per batch of due jobs, and one more past the owner filling the first batch
    # (it found no other owner, so none is tried again for a while).
    assert store.reads == 3
    # Runs queued already acquired (up to the capacity of their tick) need no acquisition:
    # only the two queue passes that found runs acquire.
    assert store.acquires == 2
    claimed = [item.job_id for result in passes for item in result.claimed]
    assert sorted(claimed) == sorted(job.id for job in jobs)


class RenamingStore(WorkerStore):
    """Right after the read, a client renames each job (its version moves on)."""

    async def due_jobs(
        self, now: datetime, limit: int, exclude_owners: Iterable[str] = ()
    ) -> list[JobView]:
        jobs = await super().due_jobs(now, limit, exclude_owners)
        for job in jobs:
            await self.db[JOBS].update_one(
                {"_id": job.id}, {"$set": {"name": f"{job.name} (renamed)"}, "$inc": {"version": 1}}
            )
        return jobs


async def test_an_edit_that_keeps_the_schedule_does_not_lose_the_slot(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)
    worker = node(db, settings, "w1", store=RenamingStore(db, "w1"))
    _, first = await worker.tick()
    assert first.claimed == []  # the start write saw the edit: the run is queued again
    [item] = (await worker.claimer.claim(5)).claimed
    assert item.job.name.endswith("(renamed)")  # the run uses the job as edited
    [run] = await runs_of(db, job.id)
    assert (run["scheduledFor"], run["status"], run["workerId"]) == (SLOT, "running", "w1")
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["activeRunIds"] == [run["_id"]]


class EditedBeforeEveryStartStore(WorkerStore):
    """A client edits each job just before each start write."""

    async def start_runs(self, starts: Sequence[Start]) -> int:
        for start in starts:
            await self.db[JOBS].update_one(
                {"_id": start.job.id}, {"$inc": {"version": 1}, "$set": {"name": str(ObjectId())}}
            )
        return await super().start_runs(starts)


async def test_a_job_edited_over_and_over_never_starts_twice_nor_lists_a_queued_run(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)
    worker = node(db, settings, "w1", store=EditedBeforeEveryStartStore(db, "w1"))
    assert await worker.started() == []
    [run] = await runs_of(db, job.id)
    assert (run["status"], run["workerId"], run["startedAt"]) == ("pending", None, None)
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["activeRunIds"] == []
    # Once the edits stop, the queued slot starts.
    [item] = (await node(db, settings, "w2").claimer.claim(5)).claimed
    assert item.run_id == run["_id"]


async def test_an_edit_records_every_slot_that_was_due_and_not_yet_queued(
    db: Database, settings: Settings
) -> None:
    """Chaos finding 1: a new schedule or a pause must not erase a backlog without a trace."""
    moved = await create_job(db, "0 * * * * *")
    paused = await create_job(db, "0 * * * * *")
    backlog = [SLOT + timedelta(minutes=n) for n in range(5)]
    for job in (moved, paused):
        await make_due(db, job.id, backlog[0])  # no worker ran for five minutes
    now = backlog[-1] + timedelta(seconds=30)
    await jobs_repo.update_job(
        db, moved.id, lambda job: jobs_repo.JobSpec.of(job).replace(cron="30 * * * * *"), now=now
    )
    await jobs_repo.set_enabled(db, paused.id, enabled=False, now=now)
    for job, reason in ((moved, RunReason.RESCHEDULED), (paused, RunReason.PAUSED)):
        runs = await runs_of(db, job.id)
        assert [run["scheduledFor"] for run in runs] == backlog
        assert {(run["status"], run["error"]) for run in runs} == {("skipped", reason.value)}
    # A worker arriving afterwards finds nothing left to record or run for those slots.
    assert await node(db, settings, "w1", clock=fixed(now)).started() == []
    assert len(await runs_of(db, moved.id)) == len(backlog)


async def test_slots_queued_within_capacity_are_acquired_by_the_insert_itself(
    db: Database, settings: Settings
) -> None:
    jobs = await due_every_second_jobs(db, 5)
    store = CountingStore(db, "w1")
    worker = node(db, settings, "w1", store=store)
    enqueued = await worker.scheduler.enqueue_due(3)
    statuses = Counter((run.status.value, run.worker_id) for run in enqueued.fresh)
    assert statuses == Counter({("running", "w1"): 3, ("pending", None): 2})
    stored = await db[RUNS].find({"status": "running", "workerId": "w1"}).to_list()
    assert all(run["leaseExpiresAt"] > SLOT for run in stored) and len(stored) == 3
    passed = await worker.claimer.claim(3, enqueued.fresh, enqueued.jobs)
    assert (len(passed.claimed), passed.more, store.acquires) == (3, True, 0)
    rest = await worker.claimer.claim(8)
    assert (len(rest.claimed), store.acquires) == (2, 1)
    started = {item.job_id for item in passed.claimed + rest.claimed}
    assert started == {job.id for job in jobs}


class RepeatingInsertStore(WorkerStore):
    """The first insert applies but its answer is lost: the retried insert meets itself."""

    async def insert_runs(self, documents: Sequence[dict[str, Any]]) -> set[int]:
        await super().insert_runs(documents)
        return await super().insert_runs(documents)


async def test_a_retried_insert_that_meets_its_own_records_still_claims_them(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)
    worker = node(db, settings, "w1", store=RepeatingInsertStore(db, "w1"))
    enqueued, passed = await worker.tick()
    assert not enqueued.others_queued
    [item] = passed.claimed
    [run] = await runs_of(db, job.id)
    assert (run["_id"], run["status"], run["workerId"]) == (item.run_id, "running", "w1")


async def test_the_start_write_of_a_held_run_carries_its_jobs_advance(
    db: Database, settings: Settings
) -> None:
    """Started: no advance write of its own. Not started (renamed meanwhile): advanced alone."""
    started, renamed = await due_every_second_jobs(db, 2)
    store = CountingStore(db, "w1")
    worker = node(db, settings, "w1", store=store)
    plan = worker.scheduler.plan(await store.due_jobs(SLOT, 10), SLOT, capacity=2)
    await db[JOBS].update_one({"_id": renamed.id}, {"$set": {"name": "x"}, "$inc": {"version": 1}})
    enqueued = await worker.scheduler.enqueue(plan)
    assert set(enqueued.carried) == {started.id, renamed.id} and enqueued.advances == []
    passed = await worker.claimer.claim(2, enqueued.fresh, enqueued.jobs, enqueued.carried)
    assert passed.advanced == {started.id}
    await worker.scheduler.advance(enqueued.uncarried(passed.advanced))
    assert store.advanced == [renamed.id]  # matches nothing: the job is due again, as edited
    stored = {job.id: await job_of(db, job.id) for job in (started, renamed)}
    assert stored[started.id]["nextRunAt"] == SLOT + timedelta(seconds=1)  # type: ignore[index]
    assert stored[renamed.id]["nextRunAt"] == SLOT  # type: ignore[index]
