"""Bounds and one-offs in the worker's pure decisions: due slots, judging, completion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared.model import JobStatus, MisfirePolicy, RunStatus
from shared.runs import RunReason, manual_run, retry_run, scheduled_run
from worker.claiming import Verdict, judge
from worker.completion import (
    Completion,
    bounded_schedule,
    completion_of,
    ends_schedule,
    has_slot_after,
)
from worker.outcomes import conclude
from worker.scheduling import due_slots, is_slot_of, job_schedule, start_deadline
from worker.store import JobView, parse_job, parse_run

DAY = datetime(2026, 6, 1, tzinfo=UTC)
THRESHOLD = timedelta(seconds=60)


def job(**fields: Any) -> JobView:
    document: dict[str, Any] = {
        "_id": ObjectId(),
        "ownerId": "o",
        "name": "j",
        "type": "noop",
        "cron": "0 * * * *",
        "enabled": True,
        "version": 4,
        "retry": {"maxAttempts": 2, "backoffSeconds": 1, "backoffMaxSeconds": 1},
        **fields,
    }
    return parse_job(document)


def one_off(at: datetime = DAY, **fields: Any) -> JobView:
    return job(cron=None, runAt=at, **fields)


def run_of(view: JobView, slot: datetime, **fields: Any) -> Any:
    document = scheduled_run(view, slot, now=slot, start_deadline=slot + THRESHOLD)
    return parse_run(document | {"status": "running", "workerId": "w", **fields})


def test_due_slots_never_reach_past_end_at_and_say_when_none_is_left() -> None:
    view = job(endAt=DAY + timedelta(hours=3))
    # Down from 01:00 to 05:30: 03:00 (the last slot inside) runs, 01:00 and 02:00 are missed.
    slots = due_slots(
        job_schedule(view), DAY + timedelta(hours=1), DAY + timedelta(hours=5, minutes=30), 10
    )
    assert slots.latest == DAY + timedelta(hours=3)
    assert slots.missed == (DAY + timedelta(hours=1), DAY + timedelta(hours=2))
    assert slots.next_run_at is None


def test_no_slot_before_start_at_is_due() -> None:
    view = job(startAt=DAY + timedelta(hours=2))
    slots = due_slots(job_schedule(view), DAY, DAY + timedelta(hours=1, minutes=59), 10)
    assert (slots.latest, slots.next_run_at) == (None, DAY + timedelta(hours=2))


def test_a_one_off_is_due_once_and_then_has_no_next_slot() -> None:
    view = one_off()
    slots = due_slots(job_schedule(view), DAY, DAY + timedelta(hours=2), 10)
    assert (slots.latest, slots.missed, slots.next_run_at) == (DAY, (), None)
    assert is_slot_of(view, DAY)
    assert not is_slot_of(view, DAY + timedelta(hours=1))


def test_a_one_off_starts_within_the_threshold_or_its_grace() -> None:
    skip = one_off(misfirePolicy=MisfirePolicy.SKIP.value)
    assert start_deadline(skip, DAY, THRESHOLD) == DAY + THRESHOLD
    grace = one_off(misfireGraceSeconds=900)
    assert start_deadline(grace, DAY, THRESHOLD) == DAY + timedelta(seconds=900)


def test_the_last_slot_before_end_at_keeps_the_tolerance_of_its_interval() -> None:
    view = job(cron="*/5 * * * *", endAt=DAY, misfirePolicy="skip")
    assert start_deadline(view, DAY, THRESHOLD) == DAY + timedelta(seconds=30)


def test_a_completed_job_skips_scheduled_slots_and_retries_but_runs_run_now() -> None:
    view = job(status=JobStatus.COMPLETED.value, nextRunAt=None)
    slot = run_of(view, DAY)
    assert judge(slot, view, DAY, busy=False).reason is RunReason.COMPLETED
    retry = parse_run(retry_run(slot.raw, not_before=DAY, now=DAY))
    assert judge(retry, view, DAY, busy=False).verdict is Verdict.SKIP
    manual = parse_run(manual_run(view, now=DAY))
    assert judge(manual, view, DAY, busy=False).verdict is Verdict.START


def test_the_final_attempt_of_the_last_slot_completes_the_job_whatever_its_outcome() -> None:
    view = one_off()
    slot = run_of(view, DAY, attempt=2)
    done = conclude(slot, view, RunStatus.FAILED, started_at=DAY, ended_at=DAY)
    assert done.retry is None
    assert done.completes == Completion(view.version)
    assert not done.counts_success


def test_a_failed_last_slot_with_attempts_left_does_not_complete_yet() -> None:
    view = one_off()
    first = conclude(run_of(view, DAY), view, RunStatus.FAILED, started_at=DAY, ended_at=DAY)
    assert first.retry is not None and first.completes is None


def test_a_success_counts_once_per_slot_and_may_be_the_max_runs_th() -> None:
    view = job(maxRuns=3, scheduledSuccessCount=2)
    retried = parse_run(retry_run(run_of(view, DAY).raw, not_before=DAY, now=DAY))
    retried = parse_run(retried.raw | {"status": "running"})
    done = conclude(retried, view, RunStatus.SUCCEEDED, started_at=DAY, ended_at=DAY)
    assert done.counts_success
    # The condition is checked in the write (several workers): at least 2 before this one.
    assert done.completes == Completion(view.version, min_successes=2)


def test_run_now_runs_never_count_nor_complete() -> None:
    view = one_off(maxRuns=None)
    manual = parse_run(manual_run(view, now=DAY) | {"status": "running"})
    done = conclude(manual, view, RunStatus.SUCCEEDED, started_at=DAY, ended_at=DAY)
    assert (done.counts_success, done.completes) == (False, None)
    assert completion_of(manual, view, RunStatus.SUCCEEDED, retried=False) is None


def test_a_last_slot_released_unrun_ends_the_schedule() -> None:
    view = one_off()
    assert ends_schedule(run_of(view, DAY), view, RunStatus.MISSED)
    assert not ends_schedule(run_of(view, DAY), view, RunStatus.PENDING)
    hourly = job(endAt=DAY + timedelta(hours=2))
    assert not ends_schedule(run_of(hourly, DAY + timedelta(hours=1)), hourly, RunStatus.SKIPPED)
    assert ends_schedule(run_of(hourly, DAY + timedelta(hours=2)), hourly, RunStatus.SKIPPED)


def test_an_unusable_schedule_is_never_taken_for_a_finished_one() -> None:
    assert has_slot_after(job(cron="not a cron"), DAY)


def test_an_unbounded_schedule_is_never_evaluated_to_know_it_has_slots_left() -> None:
    bounded_schedule.cache_clear()
    for view in (job(), job(cron=None, every="PT90M", anchorAt=DAY), job(startAt=DAY)):
        assert has_slot_after(view, DAY + timedelta(days=3650))
    assert bounded_schedule.cache_info().misses == 0
    assert not has_slot_after(job(endAt=DAY), DAY)
    assert bounded_schedule.cache_info().misses == 1
