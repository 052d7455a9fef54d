"""The database stops for 5 s and comes back: the worker survives, loses and duplicates nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared import jobs_repo
from shared.db import Database, create_client, ensure_indexes, get_database
from shared.runs import RunReason, utc_now
from shared.settings import Settings, load_settings
from tests.integration.worker.factory import create_job, cron_at, runs_of, slot_in, wait_for
from tests.process.conftest import SpawnWorker
from tests.process.worker.conftest import LagBook, wait_ready
from tools.local_mongo import LocalMongo

pytestmark = pytest.mark.process

OUTAGE_SECONDS = 5


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalMongo]:
    """A server of its own, on disk, so that its data survives a restart on the same port."""
    local = LocalMongo(data_file=tmp_path / "db.mv")
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
async def own_db(server: LocalMongo, db_name: str) -> AsyncIterator[tuple[Settings, Database]]:
    settings = load_settings({}, mongodb_uri=server.uri, db_name=db_name)
    client = create_client(settings)
    database = get_database(client, settings)
    await ensure_indexes(database, settings)
    try:
        yield settings, database
    finally:
        await client.close()


async def test_a_database_restart_is_survived_and_the_misfire_policy_applied(
    server: LocalMongo,
    own_db: tuple[Settings, Database],
    spawn_worker: SpawnWorker,
    lag_book: LagBook,
) -> None:
    _, db = own_db
    worker = spawn_worker(
        "survivor",
        CRON_MONGODB_URI=server.uri,
        CRON_MISFIRE_THRESHOLD_SECONDS="2",
        CRON_LEASE_SECONDS="10",
    )
    wait_ready(worker)
    steady = await create_job(db, "* * * * * *", overlapPolicy="allow")
    slot = slot_in(4)
    run_once = await create_job(db, cron_at(slot), misfirePolicy="runOnce", misfireGraceSeconds=60)
    skipper = await create_job(db, cron_at(slot), misfirePolicy="skip")
    # Starts before the outage and finishes during it: its outcome must wait in memory.
    straddler = await create_job(
        db, cron_at(slot - timedelta(seconds=2)), payload={"sleepSeconds": 2.5}
    )
    await asyncio.sleep((slot - timedelta(seconds=1) - utc_now()).total_seconds())
    server.stop()
    await asyncio.sleep(OUTAGE_SECONDS)
    assert worker.alive()
    server.start()
    back = utc_now()

    [late] = await wait_for(
        lambda: runs_of(db, run_once.id, startedAt={"$ne": None}), 20, "the misfired slot"
    )
    assert (late["scheduledFor"], late["trigger"]) == (slot, "schedule")
    assert late["startedAt"] - slot > timedelta(seconds=2)  # a misfire, run once
    [missed] = await wait_for(
        # A claimed run is `running` for a moment before the claim path records it missed.
        lambda: runs_of(db, skipper.id, status={"$nin": ["pending", "running"]}),
        5,
        "the skipped misfire",
    )
    assert (missed["scheduledFor"], missed["status"]) == (slot, "missed")
    assert missed["error"] == RunReason.MISFIRE_SKIP.value
    [straddled] = await wait_for(
        lambda: runs_of(db, straddler.id, status="succeeded"), 15, "the buffered finish"
    )
    assert straddled["durationMs"] >= 2500

    await wait_for(
        lambda: runs_of(db, steady.id, scheduledFor={"$gte": back + timedelta(seconds=3)}),
        15,
        "the steady job to be back on time",
    )
    paused_at = utc_now()
    await jobs_repo.set_enabled(db, steady.id, enabled=False)
    await asyncio.sleep(1)
    runs = await runs_of(db, steady.id)
    slots = [run["scheduledFor"] for run in runs]
    assert len(slots) == len(set(slots))  # no slot twice
    first, last = slots[0], slots[-1]
    assert len(slots) == (last - first).total_seconds() + 1  # no slot lost
    # A slot queued when the pause came is recorded skipped ("paused"), and nothing runs after it
    # (a busy machine may queue the slot of the very second the pause is sent: also "paused").
    paused = [run for run in runs if run["status"] == "skipped"]
    ran = [run["scheduledFor"] for run in runs if run["status"] == "succeeded"]
    assert all(run["scheduledFor"] > max(ran) for run in paused), paused
    assert all(run["scheduledFor"] > paused_at - timedelta(seconds=1) for run in paused), paused
    assert all(run["error"] == RunReason.PAUSED.value for run in paused), paused
    assert {run["status"] for run in runs} <= {"succeeded", "missed", "skipped"}
    assert all(run["attempt"] == 1 for run in runs)
    recovered = [run for run in runs if run["scheduledFor"] >= back + timedelta(seconds=3)]
    assert all(lag < 1 for lag in lag_book.add("every-second job after a restart", recovered))
    assert worker.alive()
    assert worker.events("db.unavailable")
    # Every component that saw the outage says when the database is back (chaos finding 5).
    down = {line["operation"] for line in worker.events("db.unavailable")}
    up = {line["operation"] for line in worker.events("db.available")}
    assert down <= up, down - up
