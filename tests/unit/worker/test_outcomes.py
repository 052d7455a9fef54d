"""Run documents (the one constructor family) and the conclusion of an attempt, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId
from structlog.testing import capture_logs

from shared.model import JobStatus, RunDocument, RunStatus, RunTrigger
from shared.runs import RunReason, retry_run, scheduled_run, slot_record, utc_now
from worker.claiming import Claimed
from worker.outcomes import conclude
from worker.store import JobView, RunView, parse_job, parse_run

NOW = datetime(2026, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)
SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def job(**retry: object) -> JobView:
    return parse_job(
        {
            "_id": ObjectId(),
            "ownerId": "owner-1",
            "name": "digest",
            "type": "noop",
            "cron": "0 8 * * *",
            "version": 1,
            "retry": {"maxAttempts": 3, "backoffSeconds": 10, "backoffMaxSeconds": 60, **retry},
        }
    )


def claimed(attempt: int = 1, **retry: object) -> Claimed:
    view = job(**retry)
    run = scheduled_run(view, SLOT, now=NOW, start_deadline=SLOT + timedelta(seconds=60))
    run.update(
        status="running",
        attempt=attempt,
        workerId="w:1:abc",
        leaseExpiresAt=NOW + timedelta(seconds=30),
        startedAt=NOW,
    )
    return Claimed(parse_run(run), view)


def test_now_keeps_milliseconds_only() -> None:
    assert utc_now().microsecond % 1000 == 0
    assert utc_now().tzinfo is UTC


def test_a_queued_slot_matches_the_stored_shape() -> None:
    view = job()
    document = scheduled_run(view, SLOT, now=NOW, start_deadline=SLOT + timedelta(seconds=6))
    parsed = RunDocument.model_validate(document)
    assert (parsed.status, parsed.trigger, parsed.not_before) == (
        RunStatus.PENDING,
        RunTrigger.SCHEDULE,
        SLOT,
    )
    assert parsed.start_deadline == SLOT + timedelta(seconds=6)
    assert (parsed.started_at, parsed.ended_at, parsed.worker_id) == (None, None, None)


def test_a_claimed_run_matches_the_stored_shape() -> None:
    run = claimed().run.raw
    parsed = RunDocument.model_validate(run)
    assert parsed.status is RunStatus.RUNNING
    assert parsed.started_at == NOW
    assert parsed.ended_at is None
    assert parsed.worker_id == "w:1:abc"
    assert parsed.lease_expires_at == NOW + timedelta(seconds=30)


def test_a_missed_run_document_is_final_at_once() -> None:
    document = slot_record(
        job(), SLOT, RunStatus.MISSED, RunReason.SUPERSEDED, now=NOW, missed_count=4
    )
    parsed = RunDocument.model_validate(document)
    assert (parsed.ended_at, parsed.started_at, parsed.missed_count) == (NOW, None, 4)


def test_a_retry_keeps_the_slot_and_counts_the_attempt() -> None:
    original = claimed(attempt=2).run.raw
    retry = RunDocument.model_validate(
        retry_run(original, not_before=NOW + timedelta(seconds=5), now=NOW)
    )
    assert retry.slot == original["slot"]
    assert retry.scheduled_for == SLOT
    assert retry.attempt == 3
    assert retry.trigger is RunTrigger.RETRY
    assert retry.status is RunStatus.PENDING
    assert retry.not_before == NOW + timedelta(seconds=5)


def test_success_leaves_the_job_idle_without_retry() -> None:
    outcome = conclude(*item(claimed()), RunStatus.SUCCEEDED, started_at=NOW, ended_at=NOW)
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.IDLE
    assert not outcome.failed


def test_a_failure_with_attempts_left_queues_the_next_after_the_backoff() -> None:
    ended = NOW + timedelta(milliseconds=250)
    outcome = conclude(
        *item(claimed(attempt=1)), RunStatus.FAILED, started_at=NOW, ended_at=ended, error="boom"
    )
    assert outcome.retry is not None
    assert outcome.retry["attempt"] == 2
    # The first retry waits between backoffSeconds (10) and twice it, jittered.
    wait = outcome.retry["notBefore"] - ended
    assert timedelta(seconds=10) <= wait <= timedelta(seconds=20)
    assert outcome.job_status is JobStatus.IDLE
    assert outcome.duration_ms == 250


def test_the_last_failure_marks_the_job_failed() -> None:
    outcome = conclude(*item(claimed(attempt=3)), RunStatus.TIMEOUT, started_at=NOW, ended_at=NOW)
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.FAILED


def test_a_permanent_failure_is_not_retried() -> None:
    outcome = conclude(
        *item(claimed(attempt=1)), RunStatus.FAILED, started_at=NOW, ended_at=NOW, retryable=False
    )
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.FAILED


def test_an_attempt_abandoned_at_shutdown_is_retried_at_once() -> None:
    outcome = conclude(
        *item(claimed(attempt=1)),
        RunStatus.ABANDONED,
        started_at=NOW,
        ended_at=NOW,
        error="worker shutdown",
        retry_at_once=True,
    )
    assert outcome.retry is not None
    assert outcome.retry["notBefore"] == NOW


def test_unusable_stored_options_fall_back_to_the_defaults_and_are_logged() -> None:
    with capture_logs() as logs:
        broken = claimed(maxAttempts="many")
    outcome = conclude(*item(broken), RunStatus.FAILED, started_at=NOW, ended_at=NOW)
    assert outcome.retry is not None  # default: 3 attempts
    [line] = [line for line in logs if line["event"] == "job.invalid_options"]
    assert line["job_id"] == str(broken.job_id)


def item(claimed: Claimed) -> tuple[RunView, JobView]:
    """`conclude`'s run and job arguments."""
    return claimed.run, claimed.job
