"""Bounds and one-off jobs through the schedule, claim and finish stages on fixed clocks: no
slot outside [startAt, endAt], `completed` after the last slot or the maxRuns-th success
(retries count once per slot), a one-off runs once, misses after downtime, races."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from shared.db import Database
from shared.model import RunStatus
from shared.runs import RunReason
from shared.settings import Settings
from tests.integration.worker.factory import create_job, job_of, runs_of
from tests.integration.worker.test_scheduling import SLOT, Node, fixed, make_due, node
from worker.claiming import Claimed
from worker.outcomes import conclude

T0 = SLOT - timedelta(hours=6)
LATE = timedelta(milliseconds=300)
HOUR = timedelta(hours=1)


async def finish(at: Node, claimed: Claimed, status: RunStatus, when: datetime) -> None:
    """The attempt ends as the runner would record it (conclude, then the finisher's write)."""
    outcome = conclude(claimed.run, claimed.job, status, started_at=when, ended_at=when)
    await at.store.write_outcomes([outcome])


async def stored(db: Database, job_id: Any) -> dict[str, Any]:
    document = await job_of(db, job_id)
    assert document is not None
    return document


def at(db: Database, settings: Settings, moment: datetime, name: str = "w1") -> Node:
    return node(db, settings, name, clock=fixed(moment))


async def test_no_slot_is_queued_before_start_at_even_when_due(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 * * * *", now=T0, start_at=SLOT + HOUR)
    assert job.next_run_at == SLOT + HOUR
    await make_due(db, job.id, SLOT - 3 * HOUR)  # a stale nextRunAt before the bound
    assert await at(db, settings, SLOT + LATE).started() == []
    assert await runs_of(db, job.id) == []
    assert (await stored(db, job.id))["nextRunAt"] == SLOT + HOUR
    first = await at(db, settings, SLOT + HOUR + LATE).started()
    assert [claimed.run.scheduled_for for claimed in first] == [SLOT + HOUR]


async def test_the_last_slot_before_end_at_runs_then_the_job_is_completed(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 * * * *", now=T0, end_at=SLOT + timedelta(minutes=30))
    await make_due(db, job.id, SLOT)
    worker = at(db, settings, SLOT + LATE)
    started = await worker.started()
    assert [claimed.run.scheduled_for for claimed in started] == [SLOT]
    running = await stored(db, job.id)
    assert (running["status"], running["nextRunAt"]) == ("running", None)
    await finish(worker, started[0], RunStatus.SUCCEEDED, SLOT + timedelta(seconds=2))
    done = await stored(db, job.id)
    assert (done["status"], done["nextRunAt"], done["activeRunIds"]) == ("completed", None, [])
    assert (done["runCount"], done["scheduledSuccessCount"]) == (1, 1)
    # Past the bound nothing is queued, however late a worker looks.
    await make_due(db, job.id, SLOT + HOUR)  # even a stale nextRunAt
    assert await at(db, settings, SLOT + 3 * HOUR + LATE).started() == []
    assert [run["scheduledFor"] for run in await runs_of(db, job.id)] == [SLOT]


async def test_max_runs_counts_one_success_per_slot_retries_included(
    db: Database, settings: Settings
) -> None:
    retry = {"maxAttempts": 2, "backoffSeconds": 1, "backoffMaxSeconds": 1}
    job = await create_job(db, "0 * * * *", now=T0, max_runs=2, retry=retry)
    await make_due(db, job.id, SLOT)
    worker = at(db, settings, SLOT + LATE)
    [first] = await worker.started()
    await finish(worker, first, RunStatus.FAILED, SLOT + timedelta(seconds=1))
    assert (await stored(db, job.id))["scheduledSuccessCount"] == 0
    later = at(db, settings, SLOT + timedelta(seconds=5))
    [retried] = (await later.claimer.claim(8)).claimed
    assert (retried.run.attempt, retried.run.scheduled_for) == (2, SLOT)
    await finish(later, retried, RunStatus.SUCCEEDED, SLOT + timedelta(seconds=6))
    after_one = await stored(db, job.id)
    assert (after_one["scheduledSuccessCount"], after_one["status"]) == (1, "idle")
    assert after_one["nextRunAt"] == SLOT + HOUR
    second_slot = at(db, settings, SLOT + HOUR + LATE)
    [second] = await second_slot.started()
    await finish(second_slot, second, RunStatus.SUCCEEDED, SLOT + HOUR + timedelta(seconds=1))
    done = await stored(db, job.id)
    assert (done["status"], done["nextRunAt"], done["scheduledSuccessCount"]) == (
        "completed",
        None,
        2,
    )
    assert await at(db, settings, SLOT + 2 * HOUR + LATE).started() == []
    assert len({run["slot"] for run in await runs_of(db, job.id)}) == 2


async def test_a_one_off_runs_once_then_completes(db: Database, settings: Settings) -> None:
    job = await create_job(db, run_at=SLOT, now=T0)
    assert (job.cron, job.run_at, job.next_run_at) == (None, SLOT, SLOT)
    assert await at(db, settings, SLOT - timedelta(seconds=2)).started() == []
    worker = at(db, settings, SLOT + LATE)
    [claimed] = await worker.started()
    assert claimed.run.scheduled_for == SLOT
    await finish(worker, claimed, RunStatus.SUCCEEDED, SLOT + timedelta(seconds=1))
    done = await stored(db, job.id)
    assert (done["status"], done["nextRunAt"]) == ("completed", None)
    assert await at(db, settings, SLOT + 2 * HOUR).started() == []
    assert len(await runs_of(db, job.id)) == 1


async def test_a_failing_one_off_is_retried_then_completed(
    db: Database, settings: Settings
) -> None:
    retry = {"maxAttempts": 2, "backoffSeconds": 1, "backoffMaxSeconds": 1}
    job = await create_job(db, run_at=SLOT, now=T0, retry=retry)
    worker = at(db, settings, SLOT + LATE)
    [claimed] = await worker.started()
    await finish(worker, claimed, RunStatus.FAILED, SLOT + timedelta(seconds=1))
    assert (await stored(db, job.id))["status"] == "idle"  # its retry is still to come
    later = at(db, settings, SLOT + timedelta(seconds=5))
    [retried] = (await later.claimer.claim(8)).claimed
    await finish(later, retried, RunStatus.FAILED, SLOT + timedelta(seconds=6))
    done = await stored(db, job.id)
    assert (done["status"], done["failureCount"], done["lastError"]) == ("completed", 2, None)


async def test_a_one_off_missed_during_downtime_with_skip_is_recorded_and_completed(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, run_at=SLOT, now=T0, misfirePolicy="skip")
    assert await at(db, settings, SLOT + timedelta(minutes=10)).started() == []
    runs = await runs_of(db, job.id)
    assert [(run["status"], run["error"]) for run in runs] == [
        ("missed", RunReason.MISFIRE_SKIP.value)
    ]
    done = await stored(db, job.id)
    assert (done["status"], done["nextRunAt"]) == ("completed", None)


async def test_a_one_off_late_within_its_grace_still_runs(db: Database, settings: Settings) -> None:
    job = await create_job(db, run_at=SLOT, now=T0, misfireGraceSeconds=300)
    started = await at(db, settings, SLOT + timedelta(minutes=4)).started()
    assert [claimed.run.scheduled_for for claimed in started] == [SLOT]
    late = await at(db, settings, SLOT + timedelta(minutes=4)).started()
    assert late == []
    assert len(await runs_of(db, job.id)) == 1


async def test_two_racing_workers_run_each_one_off_once(db: Database, settings: Settings) -> None:
    jobs = [await create_job(db, run_at=SLOT, now=T0) for _ in range(15)]
    clock = SLOT + LATE
    batches = await asyncio.gather(
        at(db, settings, clock, "w1").started(), at(db, settings, clock, "w2").started()
    )
    slots = Counter(claimed.run.job_id for batch in batches for claimed in batch)
    assert set(slots.values()) == {1}
    assert len(slots) == len(jobs)
    for job in jobs:
        assert len(await runs_of(db, job.id)) == 1


async def test_concurrent_successes_complete_the_job_at_the_max_runs_th(
    db: Database, settings: Settings
) -> None:
    job = await create_job(
        db, "0 * * * *", now=T0, max_runs=3, overlapPolicy="allow", misfireGraceSeconds=7200
    )
    await make_due(db, job.id, SLOT)
    first_node = at(db, settings, SLOT + LATE, "w1")
    [first] = await first_node.started()
    second_node = at(db, settings, SLOT + HOUR + LATE, "w2")
    [second] = await second_node.started()
    # Two workers finish their slots at once, the job having one success already.
    await first_node.store.jobs.update_one({"_id": job.id}, {"$set": {"scheduledSuccessCount": 1}})
    await asyncio.gather(
        finish(first_node, first, RunStatus.SUCCEEDED, SLOT + HOUR + timedelta(seconds=1)),
        finish(second_node, second, RunStatus.SUCCEEDED, SLOT + HOUR + timedelta(seconds=1)),
    )
    done = await stored(db, job.id)
    assert (done["scheduledSuccessCount"], done["status"], done["nextRunAt"]) == (
        3,
        "completed",
        None,
    )
    assert done["activeRunIds"] == []
