"""How test and backfill runs are judged at the claim and concluded (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from shared.model import OverlapPolicy, RunStatus, RunTrigger, moves_job_bookkeeping
from shared.runs import RunReason, backfill_run, manual_run, retry_run
from worker.claiming import Verdict, booked, judge
from worker.outcomes import conclude
from worker.store import JobView, parse_job, parse_run

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 3, 9, 0, tzinfo=UTC)


def job(**fields: object) -> JobView:
    document = {
        "_id": ObjectId(),
        "ownerId": "o",
        "name": "j",
        "type": "noop",
        "cron": "0 * * * *",
        "enabled": True,
        "version": 1,
        "retry": {"maxAttempts": 3, "backoffSeconds": 10},
        **fields,
    }
    return parse_job(document)


def test_only_test_runs_stay_out_of_the_jobs_bookkeeping() -> None:
    assert [t for t in RunTrigger if not moves_job_bookkeeping(t)] == [RunTrigger.TEST]
    view = job()
    assert not booked(parse_run(manual_run(view, now=NOW, trigger=RunTrigger.TEST)))
    assert booked(parse_run(manual_run(view, now=NOW)))
    assert booked(parse_run(backfill_run(view, SLOT, now=NOW)))


def test_a_test_run_has_its_own_slot_and_trigger() -> None:
    run = manual_run(job(), now=NOW, trigger=RunTrigger.TEST)
    assert run["trigger"] == "test"
    assert run["slot"] == f"test:{run['_id']}"
    assert (run["status"], run["notBefore"], run["scheduledFor"]) == ("pending", NOW, NOW)


def test_a_backfilled_slot_keeps_its_real_time_and_a_deterministic_slot_key() -> None:
    view = job()
    first, again = backfill_run(view, SLOT, now=NOW), backfill_run(view, SLOT, now=NOW)
    assert first["slot"] == again["slot"] == "backfill:2026-05-01T08:00:00Z"
    assert first["_id"] != again["_id"]
    assert (first["trigger"], first["scheduledFor"], first["notBefore"]) == ("backfill", SLOT, NOW)
    assert first["startDeadline"] is None


def test_a_test_run_runs_on_a_paused_job_and_is_skipped_behind_a_run_of_a_skip_job() -> None:
    paused = job(enabled=False)
    test = parse_run(manual_run(paused, now=NOW, trigger=RunTrigger.TEST))
    assert judge(test, paused, NOW, busy=False).verdict is Verdict.START
    assert judge(test, None, NOW, busy=False).reason is RunReason.JOB_DELETED
    assert judge(test, job(), NOW, busy=True).reason is RunReason.OVERLAP
    allow = job(overlapPolicy=OverlapPolicy.ALLOW.value)
    assert judge(test, allow, NOW, busy=True).verdict is Verdict.START


def test_a_backfilled_slot_is_neither_superseded_nor_late_and_waits_behind_a_run() -> None:
    # The job has moved far past the slot (nextRunAt two days on): a scheduled run of that
    # slot would be superseded; a backfilled one starts.
    moved_on = job(nextRunAt=NOW + timedelta(minutes=30))
    run = parse_run(backfill_run(moved_on, SLOT, now=NOW))
    assert judge(run, moved_on, NOW + timedelta(days=3), busy=False).verdict is Verdict.START
    assert judge(run, moved_on, NOW, busy=True).verdict is Verdict.DEFER
    paused = job(enabled=False)
    assert judge(run, paused, NOW, busy=False).reason is RunReason.PAUSED
    # A slot the schedule does not have (edited since) is still the slot asked for.
    assert judge(run, job(cron="30 * * * *"), NOW, busy=False).verdict is Verdict.START


def test_a_failed_test_run_is_not_retried_and_leaves_the_job_alone() -> None:
    view = job()
    run = manual_run(view, now=NOW, trigger=RunTrigger.TEST)
    run.update(status="running", startedAt=NOW)
    for status in (RunStatus.FAILED, RunStatus.ABANDONED, RunStatus.SUCCEEDED):
        outcome = conclude(parse_run(run), view, status, started_at=NOW, ended_at=NOW, error="boom")
        assert (outcome.retry, outcome.job_status) == (None, None), status


def test_a_failed_backfilled_slot_is_retried_on_its_slot_like_a_scheduled_one() -> None:
    view = job()
    run = backfill_run(view, SLOT, now=NOW)
    run.update(status="running", startedAt=NOW)
    outcome = conclude(
        parse_run(run), view, RunStatus.FAILED, started_at=NOW, ended_at=NOW, error="boom"
    )
    assert outcome.retry is not None and outcome.job_status is not None
    assert outcome.retry["slot"] == "backfill:2026-05-01T08:00:00Z"
    assert outcome.retry["scheduledFor"] == SLOT
    assert retry_run(run, not_before=NOW, now=NOW)["attempt"] == 2
