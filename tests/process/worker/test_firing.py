"""A real `cronjobs-worker` fires on time, and honours pauses, deletes and edits without restart."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from bson import ObjectId
from litestar.testing import AsyncTestClient

from api.app import create_app
from shared import jobs_repo
from shared.db import WORKERS, Database
from shared.model import JobDocument
from shared.runs import utc_now
from shared.settings import Settings
from shared.tokens import mint_token
from tests.integration.worker.factory import (
    create_job,
    cron_at,
    runs_of,
    slot_in,
    wait_for,
    wait_for_document,
)
from tests.process.conftest import WORKER_BIN, SpawnWorker
from tests.process.worker.conftest import LagBook, wait_ready

pytestmark = pytest.mark.process


@pytest.fixture
async def api(settings: Settings, db: Database) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def sleep_until(moment: datetime) -> None:
    await asyncio.sleep(max(0.0, (moment - utc_now()).total_seconds()))


async def test_a_job_created_through_the_api_fires_within_a_second_of_its_slot(
    api: AsyncTestClient[Any],
    settings: Settings,
    db: Database,
    spawn_worker: SpawnWorker,
    lag_book: LagBook,
) -> None:
    wait_ready(spawn_worker("firing"))
    headers = {"Authorization": f"Bearer {mint_token(settings, 'admin-1', roles=('admin',))}"}
    slot = slot_in(2)
    created = []
    for name, cron in (("lone", cron_at(slot)), ("every-second", "* * * * * *")):
        body = {"name": name, "type": "noop", "cron": cron, "payload": {}}
        response = await api.post("/api/cron/jobs", json=body, headers=headers)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    lone, steady = (ObjectId(job_id) for job_id in created)
    [run] = await wait_for(lambda: runs_of(db, lone, status="succeeded"), 6, "the lone run")
    assert run["scheduledFor"] == slot
    [lag] = lag_book.add("lone job, streams", [run])
    assert 0 <= lag < 1
    await sleep_until(utc_now() + timedelta(seconds=3))
    await jobs_repo.set_enabled(db, steady, enabled=False)
    steady_runs = await runs_of(db, steady, status="succeeded")
    assert len(steady_runs) >= 3
    assert all(lag < 1 for lag in lag_book.add("every-second job, streams", steady_runs))


async def test_in_polling_mode_a_job_fires_within_the_poll_interval(
    db: Database, spawn_worker: SpawnWorker, lag_book: LagBook
) -> None:
    worker = spawn_worker("poller", CRON_USE_CHANGE_STREAMS="false", CRON_POLL_INTERVAL_SECONDS="1")
    await wait_for_document(
        lambda: db[WORKERS].find_one({"name": "poller", "mode": "polling"}), 15, "the poller"
    )
    slot = slot_in(2)
    job = await create_job(db, cron_at(slot))
    [run] = await wait_for(lambda: runs_of(db, job.id, status="succeeded"), 6, "the run")
    [lag] = lag_book.add("lone job, polling every 1 s", [run])
    assert 0 <= lag <= 1
    assert worker.events("stream.opened") == []


async def test_pause_delete_and_edits_shortly_before_the_slot_are_honoured(
    db: Database, spawn_worker: SpawnWorker, lag_book: LagBook
) -> None:
    wait_ready(spawn_worker("editor"))
    slot = slot_in(3)
    paused = await create_job(db, cron_at(slot))
    deleted = await create_job(db, cron_at(slot))
    moved_here = await create_job(db, cron_at(slot + timedelta(seconds=40)))
    moved_away = await create_job(db, cron_at(slot))
    await sleep_until(slot - timedelta(seconds=1))
    await jobs_repo.set_enabled(db, paused.id, enabled=False)
    await jobs_repo.delete_job(db, deleted.id)
    for job, cron in (
        (moved_here, cron_at(slot)),
        (moved_away, cron_at(slot + timedelta(seconds=40))),
    ):
        await jobs_repo.update_job(db, job.id, partial(_with_cron, cron=cron))
    [run] = await wait_for(lambda: runs_of(db, moved_here.id, status="succeeded"), 4, "edited")
    assert run["scheduledFor"] == slot
    lag_book.add("edited 1 s before its slot", [run])
    await sleep_until(slot + timedelta(seconds=1.5))
    for job in (paused, deleted, moved_away):
        assert await runs_of(db, job.id) == []


def _with_cron(current: JobDocument, cron: str) -> jobs_repo.JobSpec:
    return jobs_repo.JobSpec.of(current).replace(cron=cron)


async def test_check_reports_whether_this_workers_heartbeat_is_recent(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    worker = spawn_worker("checked")
    await wait_for_document(lambda: db[WORKERS].find_one({"name": "checked"}), 15, "heartbeat")

    def check(name: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {**worker.env, "CRON_WORKER_NAME": name, **env}
        return subprocess.run(
            [str(WORKER_BIN), "--check"],
            check=False,
            env=environment,
            capture_output=True,
            text=True,
            timeout=20,
        )

    healthy = check("checked")
    assert (healthy.returncode, healthy.stdout.split(":")[0]) == (0, "ok")
    missing = check("nobody")
    assert (missing.returncode, missing.stdout.split(":")[0]) == (1, "missing")
    stale = check("checked", CRON_WORKER_STALE_SECONDS="0.001")
    assert (stale.returncode, stale.stdout.split(":")[0]) == (1, "stale")
    assert len(healthy.stdout.splitlines()) == 1
