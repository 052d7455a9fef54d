"""Chaos: workers SIGKILLed and restarted under load; every slot accounted for, none twice.

Three workers, 100 jobs every second, a 30 s window; every 5 s one worker chosen at random is
SIGKILLed and started again at once.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import defaultdict
from datetime import datetime, timedelta

import pytest

from shared.db import JOBS, RUNS, Database, Document
from shared.runs import RunReason, utc_now
from tests.integration.worker.factory import create_job, wait_for
from tests.process.conftest import SpawnWorker, WorkerProcess
from tests.process.worker.conftest import wait_ready

pytestmark = pytest.mark.process

JOBS_COUNT = 100
WINDOW_SECONDS = 30
KILL_EVERY_SECONDS = 5
RETRY = {"maxAttempts": 3, "backoffSeconds": 0, "backoffMaxSeconds": 0}
# Long enough that a kill always finds runs in flight.
HANDLER_SECONDS = 0.5


async def kill_and_restart(
    workers: list[WorkerProcess], spawn_worker: SpawnWorker, uri: str, start: datetime
) -> list[str]:
    """Every KILL_EVERY_SECONDS, SIGKILL a random worker and start it again; the names.

    Each kill lands 0.15 s after a slot, while that second's handlers are running.
    """
    killed = []
    for offset in range(2, WINDOW_SECONDS, KILL_EVERY_SECONDS):
        moment = start + timedelta(seconds=offset, milliseconds=150)
        await asyncio.sleep((moment - utc_now()).total_seconds())
        index = random.randrange(len(workers))
        victim = workers[index]
        victim.send(signal.SIGKILL)
        victim.wait(5)
        killed.append(victim.name)
        workers[index] = spawn_worker(victim.name, CRON_MONGODB_URI=uri)
    return killed


async def test_killed_workers_lose_and_duplicate_nothing(
    isolated_db: tuple[str, Database], spawn_worker: SpawnWorker
) -> None:
    uri, db = isolated_db
    workers = [spawn_worker(f"chaos-{index}", CRON_MONGODB_URI=uri) for index in range(3)]
    wait_ready(*workers)
    jobs = await asyncio.gather(
        *(
            create_job(
                db,
                "* * * * * *",
                payload={"sleepSeconds": HANDLER_SECONDS},
                overlapPolicy="allow",
                retry=RETRY,
            )
            for _ in range(JOBS_COUNT)
        )
    )
    start = max(job.next_run_at for job in jobs if job.next_run_at) + timedelta(seconds=1)
    end = start + timedelta(seconds=WINDOW_SECONDS - 1)
    killed = await kill_and_restart(workers, spawn_worker, uri, start)
    assert len(killed) == len(range(2, WINDOW_SECONDS, KILL_EVERY_SECONDS))

    window = {"scheduledFor": {"$gte": start, "$lte": end}}

    async def settled() -> bool:
        unclaimed = await db[JOBS].count_documents({"nextRunAt": {"$lte": end}})
        open_runs = await db[RUNS].count_documents(
            {**window, "status": {"$in": ["running", "pending"]}}
        )
        # A killed worker may leave a finished run listed on its job, its retry not yet queued:
        # a surviving worker's heartbeat settles that (and queues the retry) shortly after.
        finished = await db[RUNS].distinct(
            "_id", {**window, "status": {"$nin": ["running", "pending"]}}
        )
        listed = await db[JOBS].count_documents({"activeRunIds": {"$in": finished}})
        return unclaimed == 0 and open_runs == 0 and listed == 0

    # Killed runs wait for their lease (3 s) and a heartbeat, then retry at once.
    await wait_for(settled, 20, "every slot of the window to be settled", interval=0.5)
    runs = await db[RUNS].find(window).to_list()
    by_slot: dict[tuple[object, datetime], list[Document]] = defaultdict(list)
    for run in runs:
        by_slot[(run["jobId"], run["scheduledFor"])].append(run)
    expected = {
        (job.id, start + timedelta(seconds=offset))
        for job in jobs
        for offset in range(WINDOW_SECONDS)
    }
    assert set(by_slot) == expected, f"{len(expected - set(by_slot))} slots silently lost"
    outcomes: dict[str, int] = defaultdict(int)
    for key, attempts in by_slot.items():
        outcomes[account(key, sorted(attempts, key=lambda run: run["attempt"]))] += 1
    late = sum(line.get("event") == "run.settled_late" for w in workers for line in w.logs())
    print("\nchaos:", dict(outcomes), "killed:", killed, "settled late:", late)
    assert outcomes["ran"] > 0.8 * len(expected), outcomes
    assert outcomes["retried after abandon"] > 0, outcomes
    assert all(worker.alive() for worker in workers)
    await assert_no_job_lists_a_finished_run(db)


async def assert_no_job_lists_a_finished_run(db: Database) -> None:
    """Once the jobs stop, every job's bookkeeping catches up, also for runs of killed workers."""
    await db[JOBS].update_many({}, {"$set": {"enabled": False, "nextRunAt": None}})

    async def caught_up() -> bool:
        busy = await db[RUNS].count_documents({"status": {"$in": ["running", "pending"]}})
        listed = await db[JOBS].count_documents({"activeRunIds.0": {"$exists": True}})
        return busy == 0 and listed == 0

    await wait_for(caught_up, 15, "every job's activeRunIds to be empty", interval=0.5)


def account(key: tuple[object, datetime], attempts: list[Document]) -> str:
    """How a slot was accounted for; fails on a duplicate or an unexplained state."""
    statuses = [run["status"] for run in attempts]
    assert [run["attempt"] for run in attempts] == list(range(1, len(attempts) + 1)), key
    assert statuses.count("succeeded") <= 1, f"{key} ran twice: {statuses}"
    if statuses == ["succeeded"]:
        return "ran"
    if statuses == ["missed"]:
        assert attempts[0]["error"] == RunReason.SUPERSEDED.value, attempts[0]
        return "missed by policy"
    assert statuses[:-1] == ["abandoned"] * (len(statuses) - 1), f"{key}: {statuses}"
    assert statuses[-1] == "succeeded", f"{key}: {statuses}"
    assert all(run["trigger"] == "retry" for run in attempts[1:]), key
    return "retried after abandon"
