"""Bounds: `startAt` / `endAt` clip cron and interval slots; `maxRuns` counts successes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.bounds import BoundedSchedule, bounded, next_or_none, runs_left
from shared.interval import IntervalSchedule
from shared.job_schedule import schedule_of
from shared.one_off import NoSlotLeftError
from shared.schedule import Schedule

DAY = datetime(2026, 6, 1, tzinfo=UTC)
HOURLY = Schedule.parse("0 * * * *", "UTC")


def test_no_bounds_is_the_schedule_itself() -> None:
    assert bounded(HOURLY, None, None) is HOURLY


def test_no_slot_before_start_at() -> None:
    schedule = bounded(HOURLY, DAY + timedelta(hours=5, minutes=30), None)
    assert schedule.next_after(DAY) == DAY + timedelta(hours=6)
    assert schedule.next_times(DAY, 2) == [DAY + timedelta(hours=6), DAY + timedelta(hours=7)]
    assert schedule.slots_between(DAY, DAY + timedelta(hours=7), 10) == [
        DAY + timedelta(hours=6),
        DAY + timedelta(hours=7),
    ]


def test_a_slot_at_start_at_itself_counts() -> None:
    schedule = bounded(HOURLY, DAY + timedelta(hours=5), None)
    assert schedule.next_after(DAY) == DAY + timedelta(hours=5)


def test_no_slot_after_end_at_and_then_nothing_is_left() -> None:
    end = DAY + timedelta(hours=3)  # a slot at end_at itself is inside
    schedule = bounded(HOURLY, None, end)
    assert schedule.next_times(DAY, 10) == [DAY + timedelta(hours=h) for h in (1, 2, 3)]
    assert schedule.slots_between(DAY, DAY + timedelta(days=1), 100)[-1] == end
    with pytest.raises(NoSlotLeftError):
        schedule.next_after(end)
    assert next_or_none(schedule, end) is None
    assert next_or_none(schedule, DAY) == DAY + timedelta(hours=1)


def test_an_interval_anchored_at_start_at_keeps_its_grid_within_the_bounds() -> None:
    start = DAY + timedelta(minutes=7)
    schedule = schedule_of(
        cron=None,
        every="PT90M",
        anchor_at=start,
        start_at=start,
        end_at=start + timedelta(hours=3),
    )
    assert isinstance(schedule, BoundedSchedule)
    assert isinstance(schedule.inner, IntervalSchedule)
    assert schedule.next_times(DAY, 5) == [
        start,
        start + timedelta(minutes=90),
        start + timedelta(minutes=180),
    ]


def test_bounds_keep_the_inner_interval_and_seconds_flag() -> None:
    schedule = bounded(HOURLY, DAY, DAY + timedelta(days=2))
    assert schedule.min_interval(DAY) == timedelta(hours=1)
    assert not schedule.has_seconds


def test_an_empty_window_has_no_slots() -> None:
    schedule = bounded(HOURLY, DAY + timedelta(minutes=10), DAY + timedelta(minutes=50))
    assert schedule.slots_between(DAY, DAY + timedelta(days=1), 10) == []
    assert next_or_none(schedule, DAY) is None


@pytest.mark.parametrize(
    ("max_runs", "succeeded", "left"), [(None, 10**6, True), (3, 2, True), (3, 3, False)]
)
def test_runs_left_counts_successes_against_max_runs(
    max_runs: int | None, succeeded: int, left: bool
) -> None:
    assert runs_left(max_runs, succeeded) is left
