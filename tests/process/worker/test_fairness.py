"""Per-owner fairness on real worker processes: a big owner's herd neither delays the small
owners nor runs more than `CRON_MAX_RUNNING_PER_OWNER` at once, and none of its slots is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.db import RUNS, Database, Document
from tests.integration.worker.factory import create_job, cron_at, slot_in, wait_for
from tests.process.conftest import FAST_WORKER_ENV, SpawnWorker
from tests.process.worker.conftest import wait_ready
from worker.fairness import OWNER_CAP_WAIT_SECONDS

pytestmark = pytest.mark.process

CAP = 3
CONCURRENCY = 8
BIG_JOBS = 200
SMALL_OWNERS = 5
SMALL_JOBS = 3
HANDLER_SECONDS = 0.05


def most_at_once(runs: list[Document]) -> int:
    """The most runs in progress at one instant (from their start and end times)."""
    edges = sorted(
        [(run["startedAt"], 1) for run in runs] + [(run["endedAt"], -1) for run in runs]
    )  # at one instant, an end (-1) sorts before a start (+1)
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


async def test_a_big_owner_neither_delays_small_owners_nor_exceeds_its_cap(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    env = {
        "CRON_MAX_RUNNING_PER_OWNER": str(CAP),
        "CRON_WORKER_CONCURRENCY": str(CONCURRENCY),
    }
    workers = [spawn_worker(f"fair-{n}", **env) for n in range(2)]
    wait_ready(*workers)
    slot = slot_in(5)
    payload = {"sleepSeconds": HANDLER_SECONDS}
    for _ in range(BIG_JOBS):
        await create_job(db, cron_at(slot), owner="big", payload=payload)
    for owner in range(SMALL_OWNERS):
        for _ in range(SMALL_JOBS):
            await create_job(db, cron_at(slot), owner=f"small-{owner}", payload=payload)
    total = BIG_JOBS + SMALL_OWNERS * SMALL_JOBS
    assert slot_in(0) < slot, "creating the jobs took past their slot: raise the lead"

    # The big owner runs at most CAP at a time, each round a handler plus the deferral wait
    # (and a claim pass); generous margin for a busy 2-core machine.
    heartbeat = float(FAST_WORKER_ENV["CRON_HEARTBEAT_SECONDS"])
    per_round = HANDLER_SECONDS + OWNER_CAP_WAIT_SECONDS + 0.25
    within = (slot - slot_in(0)).total_seconds() + BIG_JOBS / CAP * per_round * 3 + 20

    async def all_done() -> list[Document]:
        done = await db[RUNS].find({"status": "succeeded"}).to_list()
        return done if len(done) == total else []

    runs = await wait_for(all_done, within, f"all {total} runs to succeed", interval=0.5)
    big = [run for run in runs if run["ownerId"] == "big"]
    small = [run for run in runs if run["ownerId"] != "big"]
    assert len(big) == BIG_JOBS  # deferred, never dropped
    assert most_at_once(big) <= CAP
    # Small owners start in the first passes: before a deferral round of the big owner could
    # pass (a handler and the wait), plus a heartbeat (the queue is looked at every beat).
    bound = timedelta(seconds=HANDLER_SECONDS + OWNER_CAP_WAIT_SECONDS + heartbeat)
    small_lags = [run["startedAt"] - run["scheduledFor"] for run in small]
    assert max(small_lags) < bound, max(small_lags)
    big_lags = sorted(run["startedAt"] - run["scheduledFor"] for run in big)
    assert big_lags[-1] > bound  # the big owner did wait: the cap was in force
    assert await db[RUNS].count_documents({"status": {"$nin": ["succeeded"]}}) == 0
    assert all(worker.alive() for worker in workers)
    print(
        f"\nfairness: small owners' worst lag {max(small_lags).total_seconds() * 1000:.0f} ms, "
        f"big owner's worst {big_lags[-1].total_seconds():.1f} s, at most "
        f"{most_at_once(big)} of {CAP} at once"
    )
