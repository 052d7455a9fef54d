"""Slot arithmetic, start deadlines (misfire), start decisions and retry backoff: pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.model import MisfirePolicy, OverlapPolicy, RetryPolicy
from shared.runs import RunReason, manual_run, retry_run, scheduled_run
from shared.schedule import Schedule
from worker.claiming import Verdict, judge
from worker.outcomes import has_attempts_left, retry_delay
from worker.scheduling import MISSED_COUNT_CAP, due_slots, schedule_for, start_deadline
from worker.store import JobView, parse_job, parse_run

MINUTE = timedelta(minutes=1)
THRESHOLD = timedelta(seconds=60)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


EVERY_MINUTE = Schedule.parse("* * * * *")
EVERY_SECOND = Schedule.parse("* * * * * *")


def test_a_slot_that_has_come_runs_and_the_job_moves_to_the_next_one() -> None:
    slots = due_slots(EVERY_MINUTE, at("2026-05-01 08:00"), at("2026-05-01 08:00:00.250"), 10)
    assert slots.latest == at("2026-05-01 08:00")
    assert slots.missed == ()
    assert slots.next_run_at == at("2026-05-01 08:01")


def test_nothing_is_due_before_the_slot() -> None:
    slots = due_slots(EVERY_MINUTE, at("2026-05-01 08:00"), at("2026-05-01 07:59:59.900"), 10)
    assert slots.latest is None
    assert slots.next_run_at == at("2026-05-01 08:00")


def test_only_the_latest_due_slot_may_run_the_earlier_ones_are_missed() -> None:
    slots = due_slots(EVERY_MINUTE, at("2026-05-01 08:00"), at("2026-05-01 08:03:30"), 10)
    assert slots.latest == at("2026-05-01 08:03")
    assert slots.missed == (at("2026-05-01 08:00"), at("2026-05-01 08:01"), at("2026-05-01 08:02"))
    assert slots.summary_from is None
    assert slots.next_run_at == at("2026-05-01 08:04")


def test_missed_slots_beyond_the_record_limit_are_summarised() -> None:
    slots = due_slots(EVERY_MINUTE, at("2026-05-01 08:00"), at("2026-05-01 09:00:10"), 5)
    assert slots.latest == at("2026-05-01 09:00")
    assert len(slots.missed) == 5
    assert slots.missed[0] == at("2026-05-01 08:00")
    assert slots.summary_from == at("2026-05-01 08:05")
    assert slots.summary_count == 55  # 08:05 .. 08:59
    assert len(slots.missed) + slots.summary_count == 60


def test_a_huge_backlog_is_counted_up_to_a_cap_without_walking_it_all() -> None:
    slots = due_slots(EVERY_SECOND, at("2026-05-01 00:00"), at("2026-05-02 00:00:00.5"), 100)
    assert slots.latest == at("2026-05-02 00:00")
    assert slots.summary_count == MISSED_COUNT_CAP
    assert slots.next_run_at == at("2026-05-02 00:00:01")


def test_the_latest_slot_is_found_across_a_long_quiet_gap() -> None:
    yearly = Schedule.parse("0 9 1 1 *")
    slots = due_slots(yearly, at("2020-01-01 09:00"), at("2026-06-01 00:00"), 3)
    assert slots.latest == at("2026-01-01 09:00")
    assert slots.missed == (at("2020-01-01 09:00"), at("2021-01-01 09:00"), at("2022-01-01 09:00"))
    assert slots.summary_count == 3
    assert slots.next_run_at == at("2027-01-01 09:00")


def test_a_next_run_at_off_the_schedule_runs_the_next_real_slot_only() -> None:
    slots = due_slots(EVERY_MINUTE, at("2026-05-01 08:00:30"), at("2026-05-01 08:00:45"), 10)
    assert slots.latest is None
    assert slots.next_run_at == at("2026-05-01 08:01")


def test_next_run_after_a_run_follows_dst_in_the_jobs_zone() -> None:
    # Europe/Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST).
    daily = Schedule.parse("0 9 * * *", "Europe/Berlin")
    slots = due_slots(daily, at("2026-03-28 08:00"), at("2026-03-28 08:00:00.5"), 10)
    assert slots.latest == at("2026-03-28 08:00")  # 09:00 CET
    assert slots.next_run_at == at("2026-03-29 07:00")  # 09:00 CEST, 23 hours later
    in_gap = Schedule.parse("30 2 * * *", "Europe/Berlin")
    slots = due_slots(in_gap, at("2026-03-28 01:30"), at("2026-03-28 01:30:01"), 10)
    assert slots.next_run_at == at("2026-03-29 01:00")  # 02:30 does not exist: 03:00 CEST


def test_fall_back_does_not_fire_twice() -> None:
    # Europe/Berlin falls back on 2026-10-25 (03:00 CEST -> 02:00 CET); 02:30 happens twice.
    schedule = Schedule.parse("30 2 * * *", "Europe/Berlin")
    first = at("2026-10-25 00:30")  # 02:30 CEST
    slots = due_slots(schedule, first, first + timedelta(seconds=1), 10)
    assert slots.latest == first
    assert slots.next_run_at == at("2026-10-26 01:30")  # not the repeated 02:30 CET


def job(cron: str = "0 * * * *", **fields: object) -> JobView:
    return parse_job(
        {"_id": ObjectId(), "ownerId": "o", "name": "j", "type": "noop", "cron": cron, **fields}
    )


@pytest.mark.parametrize(
    ("cron", "policy", "grace", "late_seconds", "on_time"),
    [
        ("0 * * * *", MisfirePolicy.RUN_ONCE, 300, 120, True),  # hourly, within the grace
        ("0 * * * *", MisfirePolicy.RUN_ONCE, 300, 301, False),
        ("0 * * * *", MisfirePolicy.SKIP, 300, 59, True),  # under the 60 s threshold
        ("0 * * * *", MisfirePolicy.SKIP, 300, 61, False),
        ("* * * * *", MisfirePolicy.SKIP, 300, 5, True),  # every minute: 6 s tolerance
        ("* * * * *", MisfirePolicy.SKIP, 300, 7, False),  # (60 s before chaos finding 3)
        ("* * * * * *", MisfirePolicy.SKIP, 300, 1, True),  # every second: at least 1 s
        ("* * * * *", MisfirePolicy.RUN_ONCE, 0, 7, False),  # runOnce, no grace: tolerance
    ],
)
def test_the_start_deadline_follows_the_policy_and_the_interval(
    cron: str, policy: MisfirePolicy, grace: int, late_seconds: int, on_time: bool
) -> None:
    slot = at("2026-05-01 08:00")
    view = job(cron, misfirePolicy=policy.value, misfireGraceSeconds=grace)
    deadline = start_deadline(view, slot, THRESHOLD)
    assert (slot + timedelta(seconds=late_seconds) <= deadline) is on_time


def test_a_run_is_judged_in_one_place() -> None:
    slot = at("2026-05-01 08:00")
    now = slot + timedelta(seconds=1)
    paused = job(enabled=False)
    skip = job(enabled=True)
    on_time = parse_run(scheduled_run(skip, slot, now=slot, start_deadline=slot + MINUTE))
    late = parse_run(scheduled_run(skip, slot, now=slot, start_deadline=slot))
    manual = parse_run(manual_run(paused, now=slot))
    retry = parse_run(retry_run(on_time.raw, not_before=slot, now=slot))
    skip, allow = job(enabled=True), job(overlapPolicy=OverlapPolicy.ALLOW.value, enabled=True)
    assert judge(on_time, skip, now, busy=False).verdict is Verdict.START
    assert judge(on_time, None, now, busy=False).reason is RunReason.JOB_DELETED
    assert judge(on_time, paused, now, busy=False).reason is RunReason.PAUSED
    assert judge(manual, paused, now, busy=False).verdict is Verdict.START  # run-now may
    assert judge(on_time, job("30 * * * *", enabled=True), now, busy=False).reason is (
        RunReason.RESCHEDULED
    )
    assert judge(late, skip, now, busy=False).reason is RunReason.MISFIRE_GRACE
    # Not started before the schedule stage queued a later slot: only the latest slot runs.
    moved_on = job(enabled=True, nextRunAt=slot + timedelta(hours=2))
    assert judge(on_time, moved_on, now, busy=False).reason is RunReason.SUPERSEDED
    next_queued = job(enabled=True, nextRunAt=slot + timedelta(hours=1))
    assert judge(on_time, next_queued, now, busy=False).verdict is Verdict.START
    assert judge(on_time, skip, now, busy=True).reason is RunReason.OVERLAP
    assert judge(retry, skip, now, busy=True).verdict is Verdict.DEFER
    assert judge(on_time, allow, now, busy=True).verdict is Verdict.START


def test_attempts_left() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [has_attempts_left(n, policy) for n in (1, 2, 3)] == [True, True, False]


def test_first_retry_is_jittered_between_the_base_delay_and_twice_it() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_seconds=10, backoff_max_seconds=600)

    def bounds(low: float, high: float) -> float:
        return low * 1000 + high

    assert retry_delay(1, policy, bounds) == 10 * 1000 + 20
    delays = {retry_delay(1, policy) for _ in range(50)}
    assert all(10 <= delay <= 20 for delay in delays)
    assert len(delays) > 1  # jobs failing together do not retry together


def test_backoff_ceiling_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_seconds=10, backoff_max_seconds=60)

    def highest(low: float, high: float) -> float:
        return high

    assert [retry_delay(n, policy, highest) for n in range(1, 6)] == [20, 40, 60, 60, 60]


@settings(database=None, max_examples=200)
@given(
    attempt=st.integers(1, 10),
    base=st.floats(0, 3600),
    cap=st.floats(0, 86_400),
)
def test_backoff_stays_between_base_and_cap(attempt: int, base: float, cap: float) -> None:
    policy = RetryPolicy(max_attempts=10, backoff_seconds=base, backoff_max_seconds=cap)
    delay = retry_delay(attempt, policy)
    assert min(base, cap) <= delay <= max(min(base, cap), cap)


def test_jitter_spreads_later_retries() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_seconds=1, backoff_max_seconds=100)
    delays = {round(retry_delay(5, policy), 3) for _ in range(50)}
    assert len(delays) > 10
    assert all(1 <= delay <= 32 for delay in delays)  # 2^5 x backoffSeconds


def test_schedules_are_parsed_once() -> None:
    assert schedule_for("*/5 * * * *", "Europe/Berlin") is schedule_for(
        "*/5 * * * *", "Europe/Berlin"
    )
