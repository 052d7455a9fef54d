"""Interval jobs through the schedule and claim stages and the repository, on fixed clocks:
misfire after downtime, racing workers, pause/resume on the grid, edits of `every`."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from shared import jobs_repo
from shared.db import Database
from shared.model import JobDocument
from shared.runs import RunReason
from shared.settings import Settings
from tests.integration.worker.factory import create_job, job_of, runs_of
from tests.integration.worker.test_scheduling import SLOT, fixed, node

# Interval jobs created here are anchored six hours before SLOT (the worker's clock).
T0 = SLOT - timedelta(hours=6)
LATE = timedelta(milliseconds=300)


def statuses(runs: list[dict[str, Any]]) -> list[tuple[datetime, str, str | None]]:
    return [(run["scheduledFor"], run["status"], run.get("error")) for run in runs]


async def test_after_downtime_only_the_latest_grid_slot_runs(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, every="PT1H", now=T0 + timedelta(milliseconds=420))
    assert job.anchor_at == T0  # whole seconds
    assert job.next_run_at == T0 + timedelta(hours=1)
    # No worker ran for six hours: the sixth slot (SLOT) is due now.
    started = await node(db, settings, "w1").started()
    assert [claimed.run.scheduled_for for claimed in started] == [SLOT]
    runs = await runs_of(db, job.id)
    missed = [(T0 + timedelta(hours=k), "missed", RunReason.SUPERSEDED.value) for k in range(1, 6)]
    assert statuses(runs)[:5] == missed
    assert statuses(runs)[5][:2] == (SLOT, "running")
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] == SLOT + timedelta(hours=1)


async def test_misfire_skip_after_downtime_records_the_late_slot_missed(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, every="PT1H", now=T0, misfirePolicy="skip")
    # Back 2 minutes after the slot: beyond its start tolerance (60 s for an hourly interval).
    late = node(db, settings, "w1", clock=fixed(SLOT + timedelta(minutes=2)))
    assert await late.started() == []
    runs = await runs_of(db, job.id)
    assert statuses(runs)[-1] == (SLOT, "missed", RunReason.MISFIRE_SKIP.value)
    assert len(runs) == 6  # one record per due slot, none ran


async def test_two_racing_workers_record_each_interval_slot_once(
    db: Database, settings: Settings
) -> None:
    jobs = [
        await create_job(db, every="PT1S", now=SLOT - timedelta(seconds=5), overlapPolicy="allow")
        for _ in range(20)
    ]
    for second in range(3):
        clock = fixed(SLOT + timedelta(seconds=second) + LATE)
        first = node(db, settings, "w1", clock=clock)
        other = node(db, settings, "w2", clock=clock)
        started = await asyncio.gather(first.started(), other.started())
        slots = Counter(
            (claimed.run.job_id, claimed.run.scheduled_for)
            for batch in started
            for claimed in batch
        )
        assert set(slots.values()) == {1}
        assert len(slots) == len(jobs)  # each job's latest slot ran, on one worker
    for job in jobs:
        runs = await runs_of(db, job.id)
        keys = Counter((run["slot"], run["attempt"]) for run in runs)
        assert set(keys.values()) == {1}
        started_slots = [run["scheduledFor"] for run in runs if run["status"] == "running"]
        assert started_slots == [SLOT + timedelta(seconds=s) for s in range(3)]
        missed = [run["scheduledFor"] for run in runs if run["status"] == "missed"]
        assert missed == [SLOT - timedelta(seconds=s) for s in range(4, 0, -1)]


async def test_resume_continues_on_the_grid_and_records_the_paused_slots(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, every="PT1H", now=T0)
    paused = await jobs_repo.set_enabled(db, job.id, enabled=False, now=T0 + timedelta(minutes=30))
    assert (paused.next_run_at, paused.paused_at) == (None, T0 + timedelta(minutes=30))
    resumed_at = T0 + timedelta(hours=5, minutes=10)
    resumed = await jobs_repo.set_enabled(db, job.id, enabled=True, now=resumed_at)
    assert resumed.anchor_at == T0  # the same grid
    assert resumed.next_run_at == T0 + timedelta(hours=6)  # not resume + 1 h
    assert resumed.paused_at is None
    paused_slots = [
        (T0 + timedelta(hours=k), "missed", RunReason.PAUSED_GAP.value) for k in range(1, 6)
    ]
    assert statuses(await runs_of(db, job.id)) == paused_slots
    # No burst: a worker right after the resume starts nothing and records nothing more.
    assert await node(db, settings, "w1", clock=fixed(resumed_at + LATE)).started() == []
    assert len(await runs_of(db, job.id)) == 5
    on_grid = await node(db, settings, "w1", clock=fixed(T0 + timedelta(hours=6) + LATE)).started()
    assert [claimed.run.scheduled_for for claimed in on_grid] == [T0 + timedelta(hours=6)]


async def test_a_cron_resume_still_starts_from_now_without_records(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 * * * *", now=T0)
    await jobs_repo.set_enabled(db, job.id, enabled=False, now=T0 + timedelta(minutes=30))
    resumed = await jobs_repo.set_enabled(
        db, job.id, enabled=True, now=SLOT - timedelta(minutes=50)
    )
    assert resumed.next_run_at == SLOT
    assert resumed.anchor_at is None
    assert await runs_of(db, job.id) == []


def _edit(current: JobDocument, **changes: Any) -> jobs_repo.JobSpec:
    return jobs_repo.JobSpec.of(current).replace(**changes)


async def test_editing_every_moves_the_anchor_and_records_the_due_slots(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, every="PT1H", now=T0)
    edited_at = T0 + timedelta(hours=3, minutes=30, milliseconds=250)
    edited = await jobs_repo.update_job(
        db, job.id, lambda current: _edit(current, every="PT2H"), now=edited_at
    )
    assert edited.anchor_at == T0 + timedelta(hours=3, minutes=30)
    assert edited.next_run_at == T0 + timedelta(hours=5, minutes=30)
    rescheduled = [
        (T0 + timedelta(hours=k), "skipped", RunReason.RESCHEDULED.value) for k in (1, 2, 3)
    ]
    assert statuses(await runs_of(db, job.id)) == rescheduled
    # A change of time zone keeps the grid: only `every` (or the kind) moves the anchor.
    zoned = await jobs_repo.update_job(
        db,
        job.id,
        lambda current: _edit(current, timezone="Asia/Tokyo"),
        now=edited_at + timedelta(minutes=1),
    )
    assert (zoned.anchor_at, zoned.next_run_at) == (edited.anchor_at, edited.next_run_at)
    as_cron = await jobs_repo.update_job(
        db, job.id, lambda current: _edit(current, every=None, cron="0 * * * *"), now=edited_at
    )
    assert (as_cron.cron, as_cron.every, as_cron.anchor_at) == ("0 * * * *", None, None)
    back = await jobs_repo.update_job(
        db, job.id, lambda current: _edit(current, every="PT90M", cron=None), now=SLOT
    )
    assert (back.anchor_at, back.next_run_at) == (SLOT, SLOT + timedelta(minutes=90))


async def test_every_edited_while_paused_records_only_the_new_grid_on_resume(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, every="PT1H", now=T0)
    await jobs_repo.set_enabled(db, job.id, enabled=False, now=T0 + timedelta(minutes=30))
    edited_at = T0 + timedelta(hours=2)
    await jobs_repo.update_job(
        db, job.id, lambda current: _edit(current, every="PT2H"), now=edited_at
    )
    resumed = await jobs_repo.set_enabled(
        db, job.id, enabled=True, now=edited_at + timedelta(hours=4, minutes=1)
    )
    assert resumed.anchor_at == edited_at
    assert resumed.next_run_at == edited_at + timedelta(hours=6)
    missed = [
        (edited_at + timedelta(hours=k), "missed", RunReason.PAUSED_GAP.value) for k in (2, 4)
    ]
    assert statuses(await runs_of(db, job.id)) == missed


async def test_interval_jobs_of_one_batch_keep_their_own_grids(
    db: Database, settings: Settings
) -> None:
    # Same `every` and the same `nextRunAt`, different anchors: each is planned on its own grid.
    first = await create_job(db, every="PT1H", now=T0, misfireGraceSeconds=3600)
    other = await create_job(
        db, every="PT1H", now=T0 + timedelta(minutes=20), misfireGraceSeconds=3600
    )
    await db["cron_jobs"].update_many({}, {"$set": {"nextRunAt": T0 + timedelta(hours=1)}})
    started = await node(db, settings, "w1").started()
    slots = {claimed.run.job_id: claimed.run.scheduled_for for claimed in started}
    assert slots == {first.id: SLOT, other.id: SLOT - timedelta(minutes=40)}


async def test_a_stored_interval_without_its_anchor_is_parked(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, every="PT1H", now=T0)
    await db["cron_jobs"].update_one({"_id": job.id}, {"$set": {"anchorAt": None}})
    assert await node(db, settings, "w1").started() == []
    stored = await job_of(db, job.id)
    assert stored is not None
    assert (stored["nextRunAt"], stored["status"]) == (None, "failed")
    assert stored["lastError"] == "invalid schedule: an interval needs its anchor"
    assert await runs_of(db, job.id) == []
