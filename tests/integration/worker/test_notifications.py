"""Failure streak, notices and auto-pause through the real driver: the store's writes and the
notifier's follow-ups, with a local SMTP server and a loopback web server (names resolved to
127.0.0.1 by a stub resolver)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shared.db import JOBS, RUNS, Database
from shared.model import JobDocument, RunStatus
from shared.netguard import IPAddress, parse_ip
from shared.runs import manual_run, utc_now
from shared.settings import Settings, load_settings
from tests.integration.job_types.servers import SmtpSink, WebServer, free_port
from tests.integration.worker.factory import create_job, job_of
from worker.claiming import Claimer
from worker.notifications import Notifier
from worker.outcomes import Outcome, conclude
from worker.store import WorkerStore

SECRET = "notify-signing-secret"
HOOK_HOST = "hooks.test"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, SmtpSink]]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, sink
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


async def loopback_dns(host: str, port: int) -> list[IPAddress]:
    """hooks.test is 127.0.0.1 (the system resolver is never asked)."""
    assert host == HOOK_HOST
    address = parse_ip("127.0.0.1")
    assert address is not None
    return [address]


def notify_settings(settings: Settings, smtp_port: int, **overrides: Any) -> Settings:
    return load_settings(
        {},
        mongodb_uri=settings.mongodb_uri,
        db_name=settings.db_name,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="cron@jobs.example",
        smtp_timeout_seconds=5,
        http_allowed_hosts=HOOK_HOST,
        http_allow_private_networks=True,
        http_signing_secret=SECRET,
        **overrides,
    )


class Harness:
    """A worker's store and notifier, and runs that finish as the test says."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.store = WorkerStore(db, "w-notify")
        self.notifier = Notifier(self.store, settings, resolver=loopback_dns)

    async def finish(
        self, job: JobDocument, status: RunStatus, error: str | None = None
    ) -> Outcome:
        """One attempt of a new run-now slot through the one start path, written."""
        await self.db[RUNS].insert_one(manual_run(job, now=utc_now()))
        claimer = Claimer(self.store, load_settings({}), asyncio.Event())
        [item] = (await claimer.claim(1)).claimed
        now = utc_now()
        outcome = conclude(item.run, item.job, status, started_at=now, ended_at=now, error=error)
        await self.store.write_outcomes([outcome])
        return outcome

    async def fail(self, job: JobDocument, follow: bool = True) -> Outcome:
        outcome = await self.finish(job, RunStatus.FAILED, "HTTP 503 from api.test")
        if follow:
            await self.notifier.follow_up(outcome)
        return outcome

    async def succeed(self, job: JobDocument) -> Outcome:
        outcome = await self.finish(job, RunStatus.SUCCEEDED)
        if outcome.streak is not None and outcome.streak.streak_notified:
            await self.notifier.follow_up(outcome)
        return outcome

    async def job(self, job: JobDocument) -> dict[str, Any]:
        found = await job_of(self.db, job.id)
        assert found is not None
        return found


def plain_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def with_notify(**notify: Any) -> dict[str, Any]:
    return {"retry": {"maxAttempts": 1}, "notify": notify}


async def test_only_the_last_attempt_of_a_slot_moves_the_streak(
    db: Database, settings: Settings
) -> None:
    harness = Harness(db, settings)
    job = await create_job(db, retry={"maxAttempts": 2, "backoffSeconds": 60})
    retried = await harness.finish(job, RunStatus.FAILED, "boom")
    assert retried.retry is not None and retried.streak is None
    assert (await harness.job(job)).get("failureStreak", 0) == 0
    single = await create_job(db, retry={"maxAttempts": 1})
    for _ in range(2):
        await harness.finish(single, RunStatus.FAILED, "boom")
    stored = await harness.job(single)
    assert (stored["failureStreak"], stored["unnotifiedFailures"]) == (2, 2)
    await harness.finish(single, RunStatus.SUCCEEDED)
    stored = await harness.job(single)
    assert (stored["failureStreak"], stored["unnotifiedFailures"]) == (0, 2)


async def test_a_failure_notice_goes_by_email_and_signed_webhook(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink], web: WebServer
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    hook = web.url("/hook", host=HOOK_HOST)
    job = await create_job(db, name="nightly", **with_notify(email="a@example.com", webhook=hook))
    outcome = await harness.fail(job)
    [mail] = smtp[1].messages
    assert mail.rcpt_tos == ["a@example.com"]
    assert mail.message["Subject"] == '[cronjobs] Job "nightly" failed'
    assert "HTTP 503 from api.test" in plain_text(mail.message)
    [request] = web.requests
    assert request.signature_ok
    assert request.headers["Host"] == f"{HOOK_HOST}:{web.port}"
    body = json.loads(request.body)
    assert (body["kind"], body["jobId"], body["failuresSinceLastNotice"]) == (
        "failure",
        str(job.id),
        1,
    )
    assert outcome.streak is not None and body["slot"] == outcome.streak.slot
    stored = await harness.job(job)
    assert stored["lastNotification"]["ok"] is True
    assert stored["lastNotification"]["kind"] == "failure"
    assert (stored["unnotifiedFailures"], stored["streakNotified"]) == (0, True)


async def test_failures_within_the_interval_are_counted_into_the_next_notice(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    job = await create_job(db, **with_notify(email="a@example.com"))
    for _ in range(3):
        await harness.fail(job)
    assert len(smtp[1].messages) == 1
    assert (await harness.job(job))["unnotifiedFailures"] == 2
    # The hour passes: the last notice moves back by CRON_NOTIFY_MIN_INTERVAL_SECONDS.
    earlier = utc_now() - timedelta(seconds=3600)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"lastFailureNoticeAt": earlier}})
    await harness.fail(job)
    second = smtp[1].messages[1].message
    assert "(3 failures since the last notice)" in second["Subject"]
    assert "Consecutive failed slots: 4" in plain_text(second)


async def test_recovery_notice_once_after_a_notified_streak(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    job = await create_job(db, name="sync", **with_notify(email="a@example.com"))
    await harness.fail(job)
    recovered = await harness.succeed(job)
    assert recovered.streak is not None and recovered.streak.streak_notified
    await harness.succeed(job)
    subjects = [mail.message["Subject"] for mail in smtp[1].messages]
    assert subjects == ['[cronjobs] Job "sync" failed', '[cronjobs] Job "sync" succeeded again']
    stored = await harness.job(job)
    assert (stored["failureStreak"], stored["streakNotified"]) == (0, False)
    assert stored["lastNotification"]["kind"] == "recovery"


async def test_no_recovery_notice_when_not_asked_for(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    job = await create_job(db, **with_notify(email="a@example.com", onRecovery=False))
    await harness.fail(job)
    await harness.succeed(job)
    assert len(smtp[1].messages) == 1


async def test_an_undeliverable_notice_is_recorded_and_leaves_the_run_alone(
    db: Database, settings: Settings, web: WebServer
) -> None:
    nobody = free_port()  # no SMTP server listens here
    harness = Harness(db, notify_settings(settings, nobody))
    hook = web.url("/status/503", host=HOOK_HOST)
    job = await create_job(db, **with_notify(email="a@example.com", webhook=hook))
    outcome = await harness.fail(job)
    stored = await harness.job(job)
    record = stored["lastNotification"]
    assert record["ok"] is False
    assert "email: the mail server did not take the notice" in record["error"]
    assert "webhook: HTTP 503" in record["error"]
    run = await db[RUNS].find_one({"_id": outcome.run_id})
    assert run is not None
    assert (run["status"], run["error"]) == ("failed", "HTTP 503 from api.test")
    assert await db[RUNS].count_documents({"jobId": job.id}) == 1  # nothing retried
    assert (stored["failureCount"], stored["runCount"]) == (1, 1)


async def test_auto_pause_after_consecutive_failed_slots_is_notified(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    job = await create_job(db, name="fragile", pauseAfterFailures=3, **with_notify(email="a@x.io"))
    for _ in range(2):
        await harness.fail(job)
    assert (await harness.job(job))["enabled"] is True
    await harness.fail(job)
    stored = await harness.job(job)
    assert (stored["enabled"], stored["status"]) == (False, "paused")
    assert stored["pausedReason"] == "auto: 3 consecutive failures"
    assert stored["nextRunAt"] is None
    assert stored["version"] == job.version + 1
    # The pause notice goes out although a failure notice went out a moment ago.
    subjects = [mail.message["Subject"] for mail in smtp[1].messages]
    assert subjects == [
        '[cronjobs] Job "fragile" failed',
        '[cronjobs] Job "fragile" was paused after 3 consecutive failures',
    ]
    assert stored["lastNotification"]["kind"] == "paused"


async def test_auto_pause_without_notify_and_zero_means_never(
    db: Database, settings: Settings
) -> None:
    harness = Harness(db, notify_settings(settings, free_port()))
    quiet = await create_job(db, retry={"maxAttempts": 1}, pauseAfterFailures=1)
    await harness.fail(quiet)
    stored = await harness.job(quiet)
    assert (stored["enabled"], stored["pausedReason"]) == (False, "auto: 1 consecutive failures")
    assert stored.get("lastNotification") is None
    never = await create_job(db, retry={"maxAttempts": 1}, pauseAfterFailures=0)
    for _ in range(3):
        await harness.fail(never)
    assert (await harness.job(never))["enabled"] is True


async def test_jobs_without_a_field_take_the_default_threshold(
    db: Database, settings: Settings
) -> None:
    harness = Harness(db, notify_settings(settings, free_port(), default_pause_after_failures=2))
    job = await create_job(db, retry={"maxAttempts": 1})
    await db[JOBS].update_one({"_id": job.id}, {"$unset": {"pauseAfterFailures": ""}})
    for _ in range(2):
        await harness.fail(job)
    assert (await harness.job(job))["pausedReason"] == "auto: 2 consecutive failures"


async def test_two_workers_send_one_notice(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    configured = notify_settings(settings, smtp[0].port)
    first, second = Harness(db, configured), Harness(db, configured)
    job = await create_job(db, **with_notify(email="a@example.com"))
    outcome = await first.fail(job, follow=False)
    await asyncio.gather(first.notifier.follow_up(outcome), second.notifier.follow_up(outcome))
    assert len(smtp[1].messages) == 1


async def test_follow_ups_run_as_tasks_after_the_write(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    job = await create_job(db, **with_notify(email="a@example.com"))
    outcome = await harness.fail(job, follow=False)
    harness.notifier.outcomes_written([outcome])
    assert len(harness.notifier) == 1
    await harness.notifier.drain(within=20)
    assert len(harness.notifier) == 0
    assert len(smtp[1].messages) == 1


async def test_a_deleted_job_gets_no_notice(
    db: Database, settings: Settings, smtp: tuple[Controller, SmtpSink]
) -> None:
    harness = Harness(db, notify_settings(settings, smtp[0].port))
    job = await create_job(db, **with_notify(email="a@example.com"))
    outcome = await harness.fail(job, follow=False)
    await db[JOBS].delete_one({"_id": job.id})
    await harness.notifier.follow_up(outcome)
    assert smtp[1].messages == []
    assert await db[JOBS].find_one({"_id": job.id}) is None
