"""Failure notification and auto-pause with a real `cronjobs-worker`: a local SMTP server and a
loopback web server (webhooks are paths under CRON_HTTP_BASE_URL, 127.0.0.1: no name lookup).

Slots every 2 s (seconds-field cron); every wait is bounded by the slots it needs plus margin
for the worker's poll (1 s), backoff (1 s) and a busy machine.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database, Document
from shared.model import JobDocument
from shared.runs import utc_now
from tests.integration.job_types.servers import ReceivedMail, SmtpSink, WebServer, free_port
from tests.integration.worker.factory import create_job, job_of, wait_for, wait_for_document
from tests.process.conftest import SpawnWorker, WorkerProcess
from tests.process.worker.conftest import wait_ready

pytestmark = pytest.mark.process

SECRET = "process-notify-secret"
PERIOD = 2.0  # seconds between slots
EVERY_TWO_SECONDS = "*/2 * * * * *"
# Poll, backoff and start-up slack on a busy 2-core machine (waits end as soon as they can).
MARGIN = 20.0


def within(slots: int) -> float:
    """How long `slots` slots may take, with margin."""
    return slots * PERIOD + MARGIN


@pytest.fixture
def smtp() -> Iterator[tuple[int, SmtpSink]]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, sink
    finally:
        controller.stop()


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer(secret=SECRET.encode())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start(spawn_worker: SpawnWorker, smtp_port: int, web: WebServer, **env: str) -> WorkerProcess:
    worker = spawn_worker(
        "notify",
        CRON_SMTP_HOST="127.0.0.1",
        CRON_SMTP_PORT=str(smtp_port),
        CRON_SMTP_FROM="cron@jobs.example",
        CRON_SMTP_TIMEOUT_SECONDS="5",
        CRON_HTTP_BASE_URL=f"http://127.0.0.1:{web.port}",
        CRON_HTTP_SIGNING_SECRET=SECRET,
        **env,
    )
    wait_ready(worker)
    return worker


async def failing_job(db: Database, name: str, **options: Any) -> JobDocument:
    """A noop job every 2 s whose attempts 1..failAttempts fail."""
    fail_attempts = options.pop("fail_attempts", 1)
    options.setdefault("retry", {"maxAttempts": 1, "backoffSeconds": 1, "backoffMaxSeconds": 1})
    return await create_job(
        db, EVERY_TWO_SECONDS, name=name, payload={"failAttempts": fail_attempts}, **options
    )


def mails_to(sink: SmtpSink, address: str) -> list[ReceivedMail]:
    return [mail for mail in list(sink.messages) if address in mail.rcpt_tos]


async def stored(db: Database, job: JobDocument) -> Document:
    found = await job_of(db, job.id)
    assert found is not None
    return found


async def failed_slots(db: Database, job: JobDocument, attempt: int) -> int:
    return await db[RUNS].count_documents({"jobId": job.id, "status": "failed", "attempt": attempt})


async def test_a_failure_notice_follows_the_last_attempt_of_a_slot_only(
    db: Database, spawn_worker: SpawnWorker, smtp: tuple[int, SmtpSink], web: WebServer
) -> None:
    worker = start(spawn_worker, smtp[0], web, CRON_NOTIFY_MIN_INTERVAL_SECONDS="0")
    two_attempts = {"maxAttempts": 2, "backoffSeconds": 1, "backoffMaxSeconds": 1}
    hook = "/hook"  # under CRON_HTTP_BASE_URL: the loopback server, no name lookup
    broken = await failing_job(
        db,
        "broken",
        fail_attempts=2,
        retry=two_attempts,
        notify={"email": "broken@example.com", "webhook": hook},
    )
    recovers = await failing_job(
        db, "recovers", fail_attempts=1, retry=two_attempts, notify={"email": "rec@example.com"}
    )

    async def two_notices() -> bool:
        return len(mails_to(smtp[1], "broken@example.com")) >= 2

    await wait_for(two_notices, within(4), "two failure notices")
    await jobs_repo.set_enabled(db, broken.id, enabled=False)
    await jobs_repo.set_enabled(db, recovers.id, enabled=False)

    async def settled() -> bool:
        final = await failed_slots(db, broken, attempt=2)
        active = await db[RUNS].count_documents(
            {"jobId": broken.id, "status": {"$in": ["pending", "running"]}}
        )
        job = await stored(db, broken)
        notices = len(mails_to(smtp[1], "broken@example.com"))
        return active == 0 and job.get("unnotifiedFailures") == 0 and notices >= final > 0

    await wait_for(settled, within(2), "the last slot's notice")
    final = await failed_slots(db, broken, attempt=2)
    first_attempts = await failed_slots(db, broken, attempt=1)
    notices = mails_to(smtp[1], "broken@example.com")
    assert len(notices) == final  # one per failed slot ...
    assert first_attempts >= final  # ... although every slot failed twice
    assert [json.loads(r.body)["kind"] for r in web.requests] == ["failure"] * final
    assert all(request.signature_ok for request in web.requests)
    assert await failed_slots(db, recovers, attempt=1) >= 1  # its retries succeeded
    assert mails_to(smtp[1], "rec@example.com") == []
    assert worker.alive()


async def test_failures_within_the_interval_are_counted_into_the_next_notice(
    db: Database, spawn_worker: SpawnWorker, smtp: tuple[int, SmtpSink], web: WebServer
) -> None:
    start(spawn_worker, smtp[0], web)  # CRON_NOTIFY_MIN_INTERVAL_SECONDS: the default hour
    job = await failing_job(db, "hourly", notify={"email": "a@example.com"})

    async def three_failed() -> bool:
        return await failed_slots(db, job, attempt=1) >= 3

    await wait_for(three_failed, within(3), "three failed slots")
    first = await wait_for(lambda: _mails(smtp[1], 1), MARGIN, "the first notice")
    assert first[0].message["Subject"] == '[cronjobs] Job "hourly" failed', [
        mail.message["Subject"] for mail in first
    ]
    counted = await stored(db, job)
    assert counted["unnotifiedFailures"] >= 1
    assert len(smtp[1].messages) == 1, [mail.message["Subject"] for mail in smtp[1].messages]
    # An hour passes: the next failed slot sends a notice counting all since the first.
    earlier = utc_now() - timedelta(seconds=3601)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"lastFailureNoticeAt": earlier}})
    second = await wait_for(lambda: _mails(smtp[1], 2), within(2), "the second notice")
    subject = second[1].message["Subject"]
    counted_in = re.search(r"\((\d+) failures since the last notice\)", subject)
    assert counted_in is not None, subject
    assert int(counted_in.group(1)) >= counted["unnotifiedFailures"] + 1, subject


async def _mails(sink: SmtpSink, count: int) -> list[ReceivedMail]:
    """Every message so far once there are `count` (until then, none: falsy)."""
    messages = list(sink.messages)
    return messages if len(messages) >= count else []


async def test_the_first_success_after_a_notified_failure_sends_one_recovery_notice(
    db: Database, spawn_worker: SpawnWorker, smtp: tuple[int, SmtpSink], web: WebServer
) -> None:
    start(spawn_worker, smtp[0], web)
    job = await failing_job(db, "flaky", notify={"email": "a@example.com"})
    await wait_for(lambda: _mails(smtp[1], 1), within(2), "the failure notice")
    await jobs_repo.update_job(
        db, job.id, lambda current: jobs_repo.JobSpec.of(current).replace(payload={})
    )

    async def three_successes() -> bool:
        return await db[RUNS].count_documents({"jobId": job.id, "status": "succeeded"}) >= 3

    await wait_for(three_successes, within(4), "successes after the fix")
    await wait_for(lambda: _mails(smtp[1], 2), MARGIN, "the recovery notice")
    subjects = [mail.message["Subject"] for mail in smtp[1].messages]
    assert subjects == ['[cronjobs] Job "flaky" failed', '[cronjobs] Job "flaky" succeeded again']
    after = await stored(db, job)
    assert (after["failureStreak"], after["lastNotification"]["kind"]) == (0, "recovery")


async def test_an_undeliverable_notice_is_recorded_and_the_job_runs_on(
    db: Database, spawn_worker: SpawnWorker, smtp: tuple[int, SmtpSink], web: WebServer
) -> None:
    nobody = free_port()  # no SMTP server listens here
    worker = start(spawn_worker, nobody, web, CRON_NOTIFY_MIN_INTERVAL_SECONDS="0")
    job = await failing_job(
        db,
        "unheard",
        notify={"email": "a@example.com", "webhook": "/status/503"},
    )

    async def recorded() -> Document | None:
        found = await stored(db, job)
        return found if found.get("lastNotification") else None

    found = await wait_for_document(recorded, within(2), "a recorded notification")
    record = found["lastNotification"]
    assert record["ok"] is False
    assert "email: the mail server did not take the notice" in record["error"]
    assert "webhook: HTTP 503" in record["error"]
    failed_before = await failed_slots(db, job, attempt=1)

    async def runs_on() -> bool:
        return await failed_slots(db, job, attempt=1) >= failed_before + 2

    await wait_for(runs_on, within(3), "later slots")
    # Each slot ran once (maxAttempts 1): the notices added no attempt and no retry.
    assert await db[RUNS].count_documents({"jobId": job.id, "attempt": {"$gt": 1}}) == 0
    assert worker.events("notify.failed")
    assert worker.alive()


async def test_auto_pause_after_consecutive_failed_slots(
    db: Database, spawn_worker: SpawnWorker, smtp: tuple[int, SmtpSink], web: WebServer
) -> None:
    worker = start(spawn_worker, smtp[0], web)
    job = await failing_job(db, "fragile", pauseAfterFailures=2, notify={"email": "a@x.example"})

    async def paused() -> Document | None:
        found = await stored(db, job)
        return found if found["enabled"] is False else None

    found = await wait_for_document(paused, within(3), "the auto-pause")
    assert found["pausedReason"] == "auto: 2 consecutive failures"
    assert (found["status"], found["nextRunAt"]) == ("paused", None)
    assert worker.wait_for_event("job.auto_paused", MARGIN)["job_id"] == str(job.id)
    mails = await wait_for(lambda: _mails(smtp[1], 2), MARGIN, "the pause notice")
    assert mails[-1].message["Subject"] == (
        '[cronjobs] Job "fragile" was paused after 2 consecutive failures'
    )
    started_before = await db[RUNS].count_documents({"jobId": job.id, "startedAt": {"$ne": None}})
    # Two more periods: nothing of the paused job starts (a slot queued ahead is skipped).
    await asyncio.sleep(2 * PERIOD + 1)
    later = await db[RUNS].count_documents({"jobId": job.id, "startedAt": {"$ne": None}})
    assert later == started_before
    # The second failed slot paused it (a third could only have started before the pause).
    assert await failed_slots(db, job, attempt=1) in {2, 3}


async def test_manual_pause_says_so_and_resume_clears_reason_and_streak(
    db: Database, spawn_worker: SpawnWorker, smtp: tuple[int, SmtpSink], web: WebServer
) -> None:
    start(spawn_worker, smtp[0], web)
    job = await failing_job(db, "manual", pauseAfterFailures=6)

    async def streak_of_two() -> bool:
        return int((await stored(db, job)).get("failureStreak", 0)) >= 2

    await wait_for(streak_of_two, within(3), "two failed slots")
    paused = await jobs_repo.set_enabled(db, job.id, enabled=False)
    assert (paused.paused_reason, paused.enabled) == ("manual", False)
    resumed = await jobs_repo.set_enabled(db, job.id, enabled=True)
    assert (resumed.paused_reason, resumed.failure_streak) == (None, 0)
    # The streak starts over: four more failed slots (one more may have been in flight) stay
    # below six; carried on from two they would have paused the job.
    failed = await failed_slots(db, job, attempt=1)

    async def four_more() -> bool:
        return await failed_slots(db, job, attempt=1) >= failed + 4

    await wait_for(four_more, within(5), "four more failed slots")
    after = await stored(db, job)
    assert after["enabled"] is True
    assert after.get("pausedReason") is None
    assert 4 <= after["failureStreak"] <= 5
