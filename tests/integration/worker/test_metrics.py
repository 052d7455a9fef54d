"""The worker's metrics against the server: bounded backlog counts, and an in-process worker
whose counters agree with the run records it wrote."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database
from shared.model import RunStatus
from shared.runs import manual_run, retry_run, utc_now
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job
from tests.integration.worker.test_store import started
from worker.claiming import Claimer
from worker.metrics import WorkerMetrics, reason_kind
from worker.outcomes import Finisher
from worker.recovery import Recovery
from worker.runner import Worker
from worker.store import WorkerStore, parse_job

EXECUTED = ("succeeded", "failed", "timeout", "abandoned")


async def test_the_backlog_counts_due_work_not_started_and_the_queue_up_to_a_cap(
    db: Database,
) -> None:
    now = utc_now()
    due = [await create_job(db, "0 0 1 1 *") for _ in range(3)]
    paused = await create_job(db, "0 0 1 1 *", enabled=False)
    await create_job(db, "0 0 1 1 *")  # its next slot is months away
    for job in [*due, paused]:
        await db[JOBS].update_one(
            {"_id": job.id}, {"$set": {"nextRunAt": now - timedelta(minutes=5)}}
        )
    stored = await db[JOBS].find_one({"_id": due[0].id})
    assert stored is not None
    view = parse_job(stored)
    queued = [
        manual_run(view, now=now - timedelta(seconds=1)),  # due: counts in the backlog
        retry_run(
            manual_run(view, now=now), not_before=now + timedelta(minutes=1), now=now
        ),  # waits for its backoff: in the queue, not (yet) in the backlog
        manual_run(view, now=now - timedelta(seconds=2)) | {"status": RunStatus.RUNNING.value},
    ]
    await db[RUNS].insert_many(queued)
    store = WorkerStore(db, "metrics-test")
    assert await store.count_backlog(now, 100) == (3 + 1, 2)
    assert await store.count_backlog(now, 2) == (2, 2)
    assert await store.count_backlog(now - timedelta(hours=1), 100) == (0, 2)


async def test_an_in_process_worker_counts_what_it_records(
    db: Database, settings: Settings
) -> None:
    metrics = WorkerMetrics()
    every_second = await create_job(db, "* * * * * *")
    # Runs 1.5 s, fires every second, overlap `skip`: every other slot is recorded skipped.
    overlapping = await create_job(
        db, "* * * * * *", payload={"sleepSeconds": 1.5}, overlapPolicy="skip"
    )
    failing = await create_job(
        db,
        "* * * * * *",
        payload={"failAttempts": 9},
        retry={"maxAttempts": 2, "backoffSeconds": 1},
    )
    worker = Worker(worker_settings(settings), db, metrics=metrics)
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 30
        while await db[RUNS].count_documents({"status": "skipped"}) < 2:
            assert time.monotonic() < deadline, "no overlap skips within 30 s"
            await asyncio.sleep(0.2)
        while await db[RUNS].count_documents({"trigger": "retry", "status": "failed"}) < 1:
            assert time.monotonic() < deadline, "no failed retry within 30 s"
            await asyncio.sleep(0.2)
        for job in (every_second, overlapping, failing):
            await db[JOBS].update_one({"_id": job.id}, {"$set": {"enabled": False}})
        await asyncio.sleep(0.5)  # a claim pass under way may still start a run
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    runs = await db[RUNS].find({"status": {"$ne": "pending"}}).to_list()
    finished = Counter(
        (run["type"], run["trigger"], run["status"]) for run in runs if run["status"] in EXECUTED
    )
    for (job_type, trigger, outcome), count in finished.items():
        labels = {"type": job_type, "trigger": trigger, "outcome": outcome}
        assert metrics.registry.get_sample_value("cronjobs_runs_finished_total", labels) == count
    started = Counter(run["trigger"] for run in runs if run["status"] in EXECUTED)
    for trigger, count in started.items():
        observed = metrics.registry.get_sample_value(
            "cronjobs_fire_lag_seconds_count", {"trigger": trigger}
        )
        assert observed == count, trigger
    recorded = Counter(
        (run["status"], reason_kind(run.get("error")))
        for run in runs
        if run["status"] in ("missed", "skipped")
    )
    assert recorded[("skipped", "overlap")] >= 2
    for (status, reason), count in recorded.items():
        labels = {"status": status, "reason": reason}
        assert metrics.registry.get_sample_value("cronjobs_slots_recorded_total", labels) == count
    retries = await db[RUNS].count_documents({"trigger": "retry"})
    assert metrics.registry.get_sample_value("cronjobs_retries_queued_total") == retries


async def test_claim_conflicts_are_the_runs_another_worker_acquired_first(
    db: Database, settings: Settings
) -> None:
    kept = await create_job(db, "0 0 9 * * *")
    gone = await create_job(db, "0 0 9 * * *")
    for job in (kept, gone):
        await jobs_repo.queue_run_now(db, job)
    await db[JOBS].delete_one({"_id": gone.id})
    first, second = WorkerMetrics(), WorkerMetrics()
    loser_store = WorkerStore(db, "w1")
    queued = await loser_store.due_pending(utc_now(), 10)
    assert len(queued) == 2
    winner = Claimer(
        WorkerStore(db, "w2"), worker_settings(settings), asyncio.Event(), metrics=second
    )
    won = await winner.claim(10)
    loser = Claimer(loser_store, worker_settings(settings), asyncio.Event(), metrics=first)
    lost = await loser.claim(10, fresh=queued)  # it read the queue before the winner acquired
    assert (len(won.claimed), won.conflicts, lost.claimed, lost.conflicts) == (1, 0, [], 2)
    assert first.registry.get_sample_value("cronjobs_claim_conflicts_total") == 2
    assert second.registry.get_sample_value("cronjobs_claim_conflicts_total") == 0
    # The winner released the orphan: counted once, by the worker that recorded it.
    deleted = {"status": "skipped", "reason": "job_deleted"}
    assert second.registry.get_sample_value("cronjobs_slots_recorded_total", deleted) == 1
    assert first.registry.get_sample_value("cronjobs_slots_recorded_total", deleted) == 0


async def test_a_reaped_run_counts_as_abandoned_with_its_retry(
    db: Database, settings: Settings
) -> None:
    item = await started(db, WorkerStore(db, "dead"), retry={"maxAttempts": 2, "backoffSeconds": 0})
    await db[RUNS].update_one(
        {"_id": item.run_id}, {"$set": {"leaseExpiresAt": utc_now() - timedelta(seconds=1)}}
    )
    metrics = WorkerMetrics()
    store = WorkerStore(db, "rescuer")
    fast = worker_settings(settings)
    await Recovery(store, fast, Finisher(store), metrics=metrics).reap(utc_now())
    [run] = await db[RUNS].find({"_id": item.run_id}).to_list()
    assert run["status"] == "abandoned"
    labels = {"type": run["type"], "trigger": run["trigger"], "outcome": "abandoned"}
    assert metrics.registry.get_sample_value("cronjobs_runs_finished_total", labels) == 1
    assert metrics.registry.get_sample_value("cronjobs_runs_reaped_total") == 1
    assert metrics.registry.get_sample_value("cronjobs_retries_queued_total") == 1
