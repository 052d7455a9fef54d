"""Scheduled claim passes against the server: once per slot, races, missed slots, misfires, DST."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database, Document
from shared.model import JobDocument
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job, job_of, runs_of
from worker.claimer import Claimer
from worker.planner import OVERLAP, SUPERSEDED
from worker.records import Advance
from worker.store import WorkerStore

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def claimer(
    db: Database, settings: Settings, name: str, store: WorkerStore | None = None, **overrides: Any
) -> Claimer:
    """A claimer whose clock stands 0.3 s after SLOT (unless `clock` is given)."""
    clock = overrides.pop("clock", fixed(SLOT + timedelta(milliseconds=300)))
    return Claimer(
        store or WorkerStore(db, name),
        worker_settings(settings, **overrides),
        asyncio.Event(),
        clock,
    )


async def make_due(db: Database, job_id: ObjectId, next_run_at: datetime) -> None:
    """Pretend the job has been waiting since `next_run_at` (a worker-owned field)."""
    await db[JOBS].update_one({"_id": job_id}, {"$set": {"nextRunAt": next_run_at}})


async def due_every_second_jobs(db: Database, count: int) -> list[JobDocument]:
    """`count` every-second jobs (overlaps allowed), all due at SLOT."""
    jobs = [await create_job(db, "* * * * * *", overlapPolicy="allow") for _ in range(count)]
    for job in jobs:
        await make_due(db, job.id, SLOT)
    return jobs


async def test_two_racing_workers_claim_each_slot_once(db: Database, settings: Settings) -> None:
    jobs = await due_every_second_jobs(db, 40)
    slot = SLOT
    first, other = claimer(db, settings, "w1"), claimer(db, settings, "w2")
    passes = await asyncio.gather(first.claim_scheduled(40), other.claim_scheduled(40))
    claimed = [item for result in passes for item in result.claimed]
    assert sorted(item.job_id for item in claimed) == sorted(job.id for job in jobs)
    runs = await db[RUNS].find({"scheduledFor": slot}).to_list()
    assert Counter(run["jobId"] for run in runs) == Counter({job.id: 1 for job in jobs})
    for job in jobs:
        stored = await job_of(db, job.id)
        assert stored is not None
        assert stored["nextRunAt"] > slot


async def test_a_slot_recorded_by_a_dead_worker_does_not_block_the_job(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)
    dead = claimer(db, settings, "dead")
    # The dead worker inserted its run, then died before advancing the job.
    document = await job_of(db, job.id)
    assert document is not None
    plans, _ = dead._plan([document], dead.clock(), [])
    await dead.store.insert_runs([plans[0].decisive])
    result = await claimer(db, settings, "w2").claim_scheduled(10)
    assert result.claimed == []
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] == SLOT + timedelta(seconds=1)
    assert [run["workerId"] for run in await runs_of(db, job.id)] == ["dead"]


class PausingStore(WorkerStore):
    """Pauses (or deletes) every job right after reading it: a client write during a claim."""

    delete = False

    async def due_jobs(self, now: datetime, limit: int) -> list[Document]:
        jobs = await super().due_jobs(now, limit)
        for job in jobs:
            if self.delete:
                await jobs_repo.delete_job(self.db, job["_id"])
            else:
                await jobs_repo.set_enabled(self.db, job["_id"], enabled=False)
        return jobs


async def test_a_job_paused_or_deleted_during_the_claim_does_not_run(
    db: Database, settings: Settings
) -> None:
    for delete in (False, True):
        job = await create_job(db, "* * * * * *")
        await make_due(db, job.id, SLOT)
        store = PausingStore(db, "w1")
        store.delete = delete
        result = await claimer(db, settings, "w1", store).claim_scheduled(5)
        assert result.claimed == []
        assert await runs_of(db, job.id) == []  # the reservation was withdrawn


class OverlappingStore(WorkerStore):
    """Another worker starts a run of each job right after this one read it."""

    async def due_jobs(self, now: datetime, limit: int) -> list[Document]:
        jobs = await super().due_jobs(now, limit)
        for job in jobs:
            await self.db[JOBS].update_one(
                {"_id": job["_id"]}, {"$addToSet": {"activeRunIds": ObjectId()}}
            )
        return jobs


async def test_overlap_skip_holds_when_another_worker_starts_a_run_meanwhile(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *", overlapPolicy="skip")
    slot = SLOT
    await make_due(db, job.id, slot)
    result = await claimer(db, settings, "w1", OverlappingStore(db, "w1")).claim_scheduled(5)
    assert result.claimed == []
    [run] = await runs_of(db, job.id)
    assert (run["status"], run["error"], run["scheduledFor"]) == ("skipped", OVERLAP, slot)
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] > slot


async def test_only_the_latest_due_slot_runs_and_the_rest_are_recorded_missed(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *", overlapPolicy="allow")
    start = SLOT - timedelta(seconds=10)
    await make_due(db, job.id, start)
    result = await claimer(db, settings, "w1", max_missed_records=4).claim_scheduled(5)
    [item] = result.claimed
    runs = await runs_of(db, job.id)
    missed = [run for run in runs if run["status"] == "missed"]
    assert [run["scheduledFor"] for run in missed] == [
        start + timedelta(seconds=n) for n in range(5)
    ]
    assert [run["error"] for run in missed[:4]] == [SUPERSEDED] * 4
    summary = missed[4]
    assert summary["missedCount"] == 6  # slots -6 s .. -1 s
    assert item.run["scheduledFor"] == SLOT
    assert runs[-1]["_id"] == item.run_id
    assert runs[-1]["status"] == "running"


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
    worker = claimer(db, settings, "w1", misfire_threshold_seconds=60, clock=late)
    result = await worker.claim_scheduled(10)
    assert [item.job_id for item in result.claimed] == [run_once.id]
    [skipped] = await runs_of(db, skip.id)
    assert skipped["status"] == "missed"
    assert skipped["error"] == "misfire: 90 s late; misfirePolicy is skip"
    [expired] = await runs_of(db, too_late.id)
    assert expired["error"] == "misfire: 90 s late, beyond misfireGraceSeconds (30 s)"


async def test_next_run_after_a_run_is_dst_correct(db: Database, settings: Settings) -> None:
    # 09:00 Berlin on 2026-03-28 is 08:00Z; after the spring-forward night it is 07:00Z.
    job = await create_job(db, "0 9 * * *", timezone="Europe/Berlin")
    slot = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    await make_due(db, job.id, slot)
    worker = claimer(db, settings, "w1", clock=fixed(slot + timedelta(milliseconds=300)))
    [item] = (await worker.claim_scheduled(5)).claimed
    assert item.run["scheduledFor"] == slot
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


async def test_a_job_whose_schedule_cannot_be_evaluated_is_parked(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"cron": "61 * * * *", "nextRunAt": SLOT}})
    assert (await claimer(db, settings, "w1").claim_scheduled(5)).claimed == []
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] is None
    assert stored["status"] == "failed"
    assert stored["lastError"].startswith("invalid schedule: ")


class CountingStore(WorkerStore):
    """Counts the due-job reads."""

    reads = 0

    async def due_jobs(self, now: datetime, limit: int) -> list[Document]:
        self.reads += 1
        return await super().due_jobs(now, limit)


async def test_a_herd_is_read_once_per_batch_and_claimed_over_several_passes(
    db: Database, settings: Settings
) -> None:
    jobs = await due_every_second_jobs(db, 25)
    store = CountingStore(db, "w1")
    worker = claimer(db, settings, "w1", store, claim_batch_size=20)
    passes = [await worker.claim_scheduled(8) for _ in range(4)]
    assert [len(result.claimed) for result in passes] == [8, 8, 4, 5]
    assert [result.more for result in passes] == [True, True, True, False]
    assert store.reads == 2  # 20 jobs in the first read, the last 5 in the second
    claimed = [item.job_id for result in passes for item in result.claimed]
    assert sorted(claimed) == sorted(job.id for job in jobs)


async def test_a_kept_job_edited_or_taken_meanwhile_is_settled_by_the_database(
    db: Database, settings: Settings
) -> None:
    jobs = await due_every_second_jobs(db, 3)
    worker = claimer(db, settings, "w1")
    first = await worker.claim_scheduled(1)
    kept = [job.id for job in jobs if job.id != first.claimed[0].job_id]
    # Between passes a client pauses one kept job and another worker claims the other.
    await jobs_repo.set_enabled(db, kept[0], enabled=False)
    assert [
        item.job_id for item in (await claimer(db, settings, "w2").claim_scheduled(5)).claimed
    ] == [kept[1]]
    later = [await worker.claim_scheduled(1) for _ in range(2)]
    assert [item for result in later for item in result.claimed] == []
    assert await runs_of(db, kept[0]) == []
    assert [run["workerId"] for run in await runs_of(db, kept[1])] == ["w2"]


class RenamingStore(WorkerStore):
    """Right after the read, a client renames each job and another worker, reading the renamed
    job, loses the slot to us and moves `nextRunAt` past it (a loser's advance)."""

    async def due_jobs(self, now: datetime, limit: int) -> list[Document]:
        jobs = await super().due_jobs(now, limit)
        for job in jobs:
            await self.db[JOBS].update_one(
                {"_id": job["_id"]},
                {"$set": {"name": f"{job['name']} (renamed)"}, "$inc": {"version": 1}},
            )
            renamed = await job_of(self.db, job["_id"])
            assert renamed is not None
            await WorkerStore(self.db, "w2").advance_jobs(
                [Advance(job["_id"], renamed["version"], SLOT + timedelta(seconds=1))]
            )
        return jobs


async def test_an_edit_that_keeps_the_schedule_does_not_lose_the_slot(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)
    result = await claimer(db, settings, "w1", RenamingStore(db, "w1")).claim_scheduled(5)
    [item] = result.claimed
    assert item.job["name"].endswith("(renamed)")  # the run uses the job as edited
    [run] = await runs_of(db, job.id)
    assert (run["scheduledFor"], run["status"], run["workerId"]) == (SLOT, "running", "w1")
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["activeRunIds"] == [run["_id"]]


async def test_kept_jobs_are_planned_as_they_are_now(db: Database, settings: Settings) -> None:
    jobs = [await create_job(db, "* * * * * *", overlapPolicy="skip") for _ in range(2)]
    for job in jobs:
        await make_due(db, job.id, SLOT)
        await db[JOBS].update_one({"_id": job.id}, {"$set": {"activeRunIds": [ObjectId()]}})
    worker = claimer(db, settings, "w1")
    first = await worker.claim_scheduled(1)
    assert first.claimed == []  # its previous run is still going: skipped
    [skipped] = await db[RUNS].find({"status": "skipped"}).to_list()
    [kept] = [job.id for job in jobs if job.id != skipped["jobId"]]
    # The kept job's previous run ends before the next pass.
    await db[JOBS].update_one({"_id": kept}, {"$set": {"activeRunIds": []}})
    [item] = (await worker.claim_scheduled(1)).claimed
    assert item.job_id == kept


class EditedDuringAdvancesStore(WorkerStore):
    """A client edits each job just before each of the first `edits` advances."""

    def __init__(self, db: Database, worker_id: str, edits: int) -> None:
        super().__init__(db, worker_id)
        self.edits = edits

    async def advance_jobs(self, advances: Sequence[Advance]) -> int:
        if self.edits > 0:
            self.edits -= 1
            for advance in advances:
                await self.db[JOBS].update_one(
                    {"_id": advance.job_id},
                    {"$inc": {"version": 1}, "$set": {"name": str(ObjectId())}},
                )
        return await super().advance_jobs(advances)


async def test_a_job_edited_over_and_over_withdraws_its_run_cleanly(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "* * * * * *")
    await make_due(db, job.id, SLOT)
    store = EditedDuringAdvancesStore(db, "w1", edits=3)
    result = await claimer(db, settings, "w1", store).claim_scheduled(5)
    assert result.claimed == []
    assert await runs_of(db, job.id) == []  # withdrawn
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["activeRunIds"] == []  # and not left listed on the job
