"""Signals: SIGTERM drains within the grace, a second signal exits at once, SIGKILL is reaped."""

from __future__ import annotations

import signal
import time

import pytest

from shared.db import JOBS, RUNS, WORKERS, Database
from shared.runs import RunReason
from tests.integration.worker.factory import (
    create_job,
    cron_at,
    runs_of,
    slot_in,
    wait_for,
    wait_for_document,
)
from tests.process.conftest import FAST_WORKER_ENV, SpawnWorker
from tests.process.worker.conftest import wait_ready
from worker.recovery import DEAD_AFTER_BEATS

pytestmark = pytest.mark.process


async def test_sigterm_lets_the_running_handler_finish_and_exits_zero(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("draining", CRON_SHUTDOWN_GRACE_SECONDS="5")
    wait_ready(worker)
    job = await create_job(db, cron_at(slot_in(1.5)), payload={"sleepSeconds": 2})
    await wait_for_document(
        lambda: db[RUNS].find_one({"jobId": job.id, "status": "running"}), 6, "the run to start"
    )
    began = time.monotonic()
    worker.send(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert time.monotonic() - began < 5  # the 2 s handler, not the whole grace period
    [run] = await runs_of(db, job.id)
    assert run["status"] == "succeeded"
    assert run["leaseExpiresAt"] is None
    assert await db[RUNS].count_documents({"status": "running"}) == 0
    stored = await db[JOBS].find_one({"_id": job.id})
    assert stored is not None
    assert (stored["activeRunIds"], stored["status"], stored["runCount"]) == ([], "idle", 1)
    beat = await db[WORKERS].find_one({"name": "draining"})
    assert beat is not None
    assert beat["stoppedAt"] is not None
    assert beat["runsInFlight"] == 0


async def test_a_handler_outliving_the_grace_period_is_abandoned_and_requeued(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("impatient", CRON_SHUTDOWN_GRACE_SECONDS="1")
    wait_ready(worker)
    job = await create_job(db, cron_at(slot_in(1.5)), payload={"sleepSeconds": 60})
    await wait_for_document(
        lambda: db[RUNS].find_one({"jobId": job.id, "status": "running"}), 6, "the run to start"
    )
    worker.send(signal.SIGTERM)
    assert worker.wait(10) == 0
    abandoned, retry = await runs_of(db, job.id)
    assert (abandoned["status"], abandoned["error"]) == ("abandoned", "worker shutdown")
    assert (retry["status"], retry["attempt"], retry["trigger"]) == ("pending", 2, "retry")
    assert await db[RUNS].count_documents({"status": "running"}) == 0


async def test_a_second_signal_exits_at_once(db: Database, spawn_worker: SpawnWorker) -> None:
    worker = spawn_worker("hasty", CRON_SHUTDOWN_GRACE_SECONDS="30")
    wait_ready(worker)
    job = await create_job(db, cron_at(slot_in(1.5)), payload={"sleepSeconds": 60})
    await wait_for_document(
        lambda: db[RUNS].find_one({"jobId": job.id, "status": "running"}), 6, "the run to start"
    )
    worker.send(signal.SIGTERM)
    worker.wait_for_event("worker.stopping", 5)
    began = time.monotonic()
    worker.send(signal.SIGINT)
    assert worker.wait(5) == 128 + signal.SIGINT
    assert time.monotonic() - began < 2


async def test_runs_of_a_sigkilled_worker_are_abandoned_and_retried_elsewhere(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    doomed = spawn_worker("doomed")
    wait_ready(doomed)
    job = await create_job(
        db,
        cron_at(slot_in(1.5)),
        payload={"sleepSeconds": 2},
        retry={"maxAttempts": 2, "backoffSeconds": 0},
    )
    first = await wait_for_document(
        lambda: db[RUNS].find_one({"jobId": job.id, "status": "running"}), 6, "the run to start"
    )
    assert first["workerId"].startswith("doomed:")
    # Its handler has started once the job lists the run (a slot is queued, already acquired,
    # a moment before it starts).
    await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "activeRunIds": first["_id"]}), 6, "the start"
    )
    doomed.send(signal.SIGKILL)
    assert doomed.wait(5) == -signal.SIGKILL
    rescuer = spawn_worker("rescuer")

    async def settled() -> list[dict[str, object]]:
        runs = await runs_of(db, job.id)
        return runs if [run["status"] for run in runs] == ["abandoned", "succeeded"] else []

    # Noticed by its missing heartbeats or by its expired lease, whichever comes first; then
    # the retry is due at once. Derived from the settings, with room for a loaded machine.
    lease = float(FAST_WORKER_ENV["CRON_LEASE_SECONDS"])
    beat = float(FAST_WORKER_ENV["CRON_HEARTBEAT_SECONDS"])
    within = 3 * (lease + (DEAD_AFTER_BEATS + 1) * beat) + 10
    abandoned, retried = await wait_for(settled, within, "abandon and retry")
    assert abandoned["error"] in {
        f"{RunReason.WORKER_DEAD.value} ({first['workerId']})",
        f"{RunReason.LEASE_EXPIRED.value} ({first['workerId']})",
    }
    assert (retried["attempt"], retried["trigger"]) == (2, "retry")
    assert str(retried["workerId"]).startswith("rescuer:")
    stored = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "runCount": 2}), within, "job updated"
    )
    assert (stored["activeRunIds"], stored["status"], stored["failureCount"]) == ([], "idle", 1)
    assert rescuer.alive()
