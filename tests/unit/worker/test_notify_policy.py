"""Which outcomes move the failure streak, and the notice and auto-pause decisions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from shared.model import RunStatus, RunTrigger
from shared.runs import retry_run, scheduled_run
from worker.notify_policy import (
    STREAK_TRIGGERS,
    StreakEvent,
    auto_pause_reason,
    counts_for_streak,
    failure_notice_due,
    notify_policy,
    pause_threshold,
    should_pause,
    wants_failure_notice,
    wants_recovery_notice,
)
from worker.outcomes import conclude
from worker.store import JobView, RunView, parse_job, parse_run

NOW = datetime(2026, 5, 1, 8, 0, 1, tzinfo=UTC)
SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def job(max_attempts: int = 2, **fields: object) -> JobView:
    return parse_job(
        {
            "_id": ObjectId(),
            "ownerId": "owner-1",
            "name": "digest",
            "type": "noop",
            "cron": "0 8 * * *",
            "version": 1,
            "retry": {"maxAttempts": max_attempts, "backoffSeconds": 1, "backoffMaxSeconds": 1},
            **fields,
        }
    )


def running(view: JobView, attempt: int = 1) -> RunView:
    document = scheduled_run(view, SLOT, now=NOW, start_deadline=SLOT + timedelta(seconds=60))
    if attempt > 1:
        document = retry_run(document, not_before=NOW, now=NOW)
    document.update(status="running", attempt=attempt, startedAt=NOW)
    return parse_run(document)


def test_a_failed_attempt_that_queues_a_retry_does_not_end_its_slot() -> None:
    view = job(max_attempts=2)
    outcome = conclude(running(view), view, RunStatus.FAILED, started_at=NOW, ended_at=NOW)
    assert outcome.retry is not None
    assert outcome.streak is None


def test_the_last_failed_attempt_of_a_slot_counts_once() -> None:
    view = job(max_attempts=2)
    outcome = conclude(running(view, 2), view, RunStatus.TIMEOUT, started_at=NOW, ended_at=NOW)
    assert outcome.retry is None
    assert outcome.streak is not None
    assert outcome.streak.event is StreakEvent.FAILED_SLOT
    assert (outcome.streak.slot, outcome.streak.scheduled_for) == ("2026-05-01T08:00:00Z", SLOT)


def test_a_failure_that_may_not_retry_ends_its_slot_at_once() -> None:
    view = job(max_attempts=3)
    outcome = conclude(
        running(view), view, RunStatus.FAILED, started_at=NOW, ended_at=NOW, retryable=False
    )
    assert outcome.streak is not None
    assert outcome.streak.event is StreakEvent.FAILED_SLOT


def test_a_success_carries_whether_the_streak_was_notified() -> None:
    quiet, told = job(), job(streakNotified=True)
    plain = conclude(running(quiet), quiet, RunStatus.SUCCEEDED, started_at=NOW, ended_at=NOW)
    owed = conclude(running(told), told, RunStatus.SUCCEEDED, started_at=NOW, ended_at=NOW)
    assert plain.streak is not None and owed.streak is not None
    assert plain.streak.event is owed.streak.event is StreakEvent.SUCCEEDED
    assert (plain.streak.streak_notified, owed.streak.streak_notified) == (False, True)


def test_every_existing_trigger_counts_and_the_predicate_decides() -> None:
    view = job()
    run = running(view)
    assert {RunTrigger.SCHEDULE, RunTrigger.MANUAL, RunTrigger.RETRY} <= STREAK_TRIGGERS
    # Backfilled slots count like scheduled ones; test runs never touch the streak.
    assert RunTrigger.BACKFILL in STREAK_TRIGGERS
    assert RunTrigger.TEST not in STREAK_TRIGGERS
    assert counts_for_streak(run)
    assert counts_for_streak(running(view, 2))  # a retry (trigger `retry`)


def test_a_run_outside_the_predicate_moves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one predicate is what a test run (trigger `test`) will fail.
    monkeypatch.setattr("worker.notify_policy.STREAK_TRIGGERS", frozenset())
    view = job(max_attempts=1)
    outcome = conclude(running(view), view, RunStatus.FAILED, started_at=NOW, ended_at=NOW)
    assert outcome.streak is None


@pytest.mark.parametrize(
    ("last", "due"),
    [
        (None, True),
        (NOW - timedelta(seconds=3600), True),
        (NOW - timedelta(seconds=3599), False),
        (NOW, False),
    ],
)
def test_at_most_one_failure_notice_per_interval(last: datetime | None, due: bool) -> None:
    assert failure_notice_due(last, NOW, 3600) is due


@pytest.mark.parametrize(
    ("streak", "threshold", "paused"),
    [(0, 0, False), (50, 0, False), (2, 3, False), (3, 3, True), (4, 3, True), (1, 1, True)],
)
def test_auto_pause_after_threshold(streak: int, threshold: int, paused: bool) -> None:
    assert should_pause(streak, threshold) is paused


def test_pause_threshold_falls_back_to_the_default() -> None:
    assert pause_threshold({"pauseAfterFailures": 5}, 2) == 5
    assert pause_threshold({"pauseAfterFailures": 0}, 2) == 0
    assert pause_threshold({}, 2) == 2
    assert pause_threshold({"pauseAfterFailures": True}, 2) == 2
    assert pause_threshold({"pauseAfterFailures": -1}, 2) == 2


def test_auto_pause_reason() -> None:
    assert auto_pause_reason(3) == "auto: 3 consecutive failures"


def test_notify_policy_needs_a_channel() -> None:
    assert notify_policy({}) is None
    assert notify_policy({"notify": None}) is None
    assert notify_policy({"notify": {"email": None, "webhook": None}}) is None
    assert notify_policy({"notify": {"email": "not an address"}}) is None
    policy = notify_policy({"notify": {"email": "a@example.com", "onRecovery": False}})
    assert policy is not None and policy.on_failure and not policy.on_recovery
    assert wants_failure_notice(policy, paused=False)
    assert not wants_recovery_notice(policy)


def test_an_auto_pause_is_told_even_without_failure_notices() -> None:
    policy = notify_policy({"notify": {"webhook": "https://h.example/x", "onFailure": False}})
    assert not wants_failure_notice(policy, paused=False)
    assert wants_failure_notice(policy, paused=True)
    assert not wants_failure_notice(None, paused=True)
