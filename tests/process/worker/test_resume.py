"""After a restart the worker resumes its change streams from the stored tokens."""

from __future__ import annotations

import signal

import pytest

from shared import jobs_repo
from shared.db import STREAM_TOKENS, Database
from tests.integration.worker.factory import (
    create_job,
    cron_at,
    runs_of,
    slot_in,
    wait_for,
    wait_for_document,
)
from tests.process.conftest import SpawnWorker
from tests.process.worker.conftest import wait_ready

pytestmark = pytest.mark.process

KEY = "resumer:cron_jobs"


async def test_a_restarted_worker_resumes_from_its_stored_token(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    first = spawn_worker("resumer")
    wait_ready(first)
    # One event on each watched collection, so that both tokens get stored.
    await jobs_repo.queue_run_now(db, await create_job(db, "0 0 9 1 1 *"))
    stored = await wait_for_document(lambda: db[STREAM_TOKENS].find_one({"_id": KEY}), 5, "a token")
    await wait_for_document(
        lambda: db[STREAM_TOKENS].find_one({"_id": "resumer:cron_runs"}), 5, "a runs token"
    )
    first.send(signal.SIGTERM)
    assert first.wait(10) == 0
    before = await db[STREAM_TOKENS].find_one({"_id": KEY})
    assert before is not None
    assert before["token"] is not None
    slot = slot_in(2.5)
    job = await create_job(db, cron_at(slot))  # while no worker watches
    second = spawn_worker("resumer")
    wait_ready(second)
    opened = {line["collection"] for line in second.events("stream.opened")}
    resumed = {line["collection"] for line in second.events("stream.resumed")}
    assert resumed == {"cron_jobs", "cron_runs"}
    assert opened == set()  # no fresh stream: nothing was resynchronised
    await wait_for(lambda: runs_of(db, job.id, status="succeeded"), 6, "the job made while down")
    after = await wait_for_document(
        lambda: db[STREAM_TOKENS].find_one({"_id": KEY, "token": {"$ne": before["token"]}}),
        5,
        "the token to move past the event made while down",
    )
    assert after["token"]["_data"] > stored["token"]["_data"]
