"""The schedule stage's pure arithmetic on interval jobs: due slots, deadlines, rescheduling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from shared.interval import IntervalSchedule
from shared.model import MisfirePolicy
from shared.runs import RunReason, scheduled_run
from worker.claiming import Verdict, judge
from worker.scheduling import due_slots, is_slot_of, job_schedule, start_deadline
from worker.store import JobView, parse_job, parse_run

ANCHOR = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
STEP = timedelta(minutes=90)
THRESHOLD = timedelta(seconds=60)


def interval_job(
    every: str = "PT90M", anchor: datetime | None = ANCHOR, **fields: object
) -> JobView:
    return parse_job(
        {
            "_id": ObjectId(),
            "ownerId": "o",
            "name": "j",
            "type": "noop",
            "cron": None,
            "every": every,
            "anchorAt": anchor,
            "timezone": "Europe/Berlin",
            "enabled": True,
            **fields,
        }
    )


def test_the_view_carries_the_interval() -> None:
    view = interval_job()
    assert (view.cron, view.every, view.anchor_at) == (None, "PT90M", ANCHOR)
    assert job_schedule(view) == IntervalSchedule.parse("PT90M", ANCHOR)


def test_after_downtime_only_the_latest_grid_slot_runs_across_a_dst_change() -> None:
    schedule = job_schedule(interval_job())
    # Down from the first slot to 10 min after the 6th (the spring-forward falls in between).
    now = ANCHOR + 6 * STEP + timedelta(minutes=10)
    slots = due_slots(schedule, ANCHOR + STEP, now, 100)
    assert slots.latest == ANCHOR + 6 * STEP
    assert slots.missed == tuple(ANCHOR + k * STEP for k in range(1, 6))
    assert slots.next_run_at == ANCHOR + 7 * STEP
    assert (slots.summary_from, slots.summary_count) == (None, 0)


def test_a_long_backlog_is_summarised() -> None:
    schedule = job_schedule(interval_job("PT1M"))
    slots = due_slots(schedule, ANCHOR + timedelta(minutes=1), ANCHOR + timedelta(days=1), 10)
    assert slots.latest == ANCHOR + timedelta(days=1)
    assert len(slots.missed) == 10
    assert slots.summary_count == 24 * 60 - 1 - 10


def test_the_start_deadline_uses_the_interval() -> None:
    slot = ANCHOR + STEP
    skip = interval_job(misfirePolicy=MisfirePolicy.SKIP.value)
    assert start_deadline(skip, slot, THRESHOLD) == slot + THRESHOLD  # a tenth of 90 min > 60 s
    fast = interval_job("PT1M", misfirePolicy=MisfirePolicy.SKIP.value)
    assert start_deadline(fast, ANCHOR + timedelta(minutes=1), THRESHOLD) == ANCHOR + timedelta(
        minutes=1, seconds=6
    )
    run_once = interval_job(misfireGraceSeconds=300)
    assert start_deadline(run_once, slot, THRESHOLD) == slot + timedelta(seconds=300)


def test_a_slot_of_the_old_grid_is_withdrawn_after_every_changes() -> None:
    before = interval_job()
    slot = ANCHOR + STEP
    run = parse_run(scheduled_run(before, slot, now=slot, start_deadline=None))
    assert is_slot_of(before, slot)
    assert judge(run, before, slot, busy=False).verdict is Verdict.START
    moved = interval_job(anchor=ANCHOR + timedelta(minutes=7), _id=before.id)
    judgement = judge(run, moved, slot, busy=False)
    assert (judgement.verdict, judgement.reason) == (Verdict.SKIP, RunReason.RESCHEDULED)


def test_an_interval_without_its_anchor_is_unusable() -> None:
    assert not is_slot_of(interval_job(anchor=None), ANCHOR)
