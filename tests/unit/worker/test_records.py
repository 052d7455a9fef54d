"""Run documents and the conclusion of an attempt (retry or final state), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from shared.model import JobStatus, RunDocument, RunStatus, RunTrigger
from worker.records import Claimed, conclude, retry_document, run_document, utc_now

NOW = datetime(2026, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)
SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def job(**retry: object) -> dict[str, object]:
    return {
        "_id": ObjectId(),
        "ownerId": "owner-1",
        "name": "digest",
        "type": "noop",
        "retry": {"maxAttempts": 3, "backoffSeconds": 10, "backoffMaxSeconds": 60, **retry},
    }


def claimed(attempt: int = 1, **retry: object) -> Claimed:
    document = job(**retry)
    run = run_document(
        document,
        slot="2026-05-01T08:00:00Z",
        scheduled_for=SLOT,
        trigger=RunTrigger.SCHEDULE,
        status=RunStatus.RUNNING,
        now=NOW,
        attempt=attempt,
        worker_id="w:1:abc",
        lease_until=NOW + timedelta(seconds=30),
    )
    return Claimed(run, document)


def test_now_keeps_milliseconds_only() -> None:
    assert utc_now().microsecond % 1000 == 0
    assert utc_now().tzinfo is UTC


def test_a_running_run_document_matches_the_stored_shape() -> None:
    run = claimed().run
    parsed = RunDocument.model_validate(run)
    assert parsed.status is RunStatus.RUNNING
    assert parsed.started_at == NOW
    assert parsed.ended_at is None
    assert parsed.worker_id == "w:1:abc"
    assert parsed.lease_expires_at == NOW + timedelta(seconds=30)


def test_a_missed_run_document_is_final_at_once() -> None:
    document = run_document(
        job(),
        slot="2026-05-01T08:00:00Z",
        scheduled_for=SLOT,
        trigger=RunTrigger.SCHEDULE,
        status=RunStatus.MISSED,
        now=NOW,
        error="late",
        missed_count=4,
    )
    parsed = RunDocument.model_validate(document)
    assert (parsed.ended_at, parsed.started_at, parsed.missed_count) == (NOW, None, 4)


def test_a_retry_keeps_the_slot_and_counts_the_attempt() -> None:
    original = claimed(attempt=2).run
    retry = RunDocument.model_validate(
        retry_document(original, not_before=NOW + timedelta(seconds=5), now=NOW)
    )
    assert retry.slot == original["slot"]
    assert retry.scheduled_for == SLOT
    assert retry.attempt == 3
    assert retry.trigger is RunTrigger.RETRY
    assert retry.status is RunStatus.PENDING
    assert retry.not_before == NOW + timedelta(seconds=5)


def test_success_leaves_the_job_idle_without_retry() -> None:
    outcome = conclude(claimed(), RunStatus.SUCCEEDED, started_at=NOW, ended_at=NOW)
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.IDLE
    assert not outcome.failed


def test_a_failure_with_attempts_left_queues_the_next_after_the_backoff() -> None:
    ended = NOW + timedelta(milliseconds=250)
    outcome = conclude(
        claimed(attempt=1), RunStatus.FAILED, started_at=NOW, ended_at=ended, error="boom"
    )
    assert outcome.retry is not None
    assert outcome.retry["attempt"] == 2
    assert outcome.retry["notBefore"] == ended + timedelta(seconds=10)
    assert outcome.job_status is JobStatus.IDLE
    assert outcome.duration_ms == 250


def test_the_last_failure_marks_the_job_failed() -> None:
    outcome = conclude(claimed(attempt=3), RunStatus.TIMEOUT, started_at=NOW, ended_at=NOW)
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.FAILED


def test_a_permanent_failure_is_not_retried() -> None:
    outcome = conclude(
        claimed(attempt=1), RunStatus.FAILED, started_at=NOW, ended_at=NOW, retryable=False
    )
    assert outcome.retry is None
    assert outcome.job_status is JobStatus.FAILED


def test_an_attempt_abandoned_at_shutdown_is_retried_at_once() -> None:
    outcome = conclude(
        claimed(attempt=1),
        RunStatus.ABANDONED,
        started_at=NOW,
        ended_at=NOW,
        error="worker shutdown",
        retry_at_once=True,
    )
    assert outcome.retry is not None
    assert outcome.retry["notBefore"] == NOW


def test_an_unusable_stored_retry_policy_falls_back_to_the_default() -> None:
    outcome = conclude(claimed(maxAttempts="many"), RunStatus.FAILED, started_at=NOW, ended_at=NOW)
    assert outcome.retry is not None  # default: 3 attempts
