"""One-off schedules (`runAt`): one slot, an instant no time zone or DST change moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.job_schedule import MissingScheduleError, exactly_one_kind, schedule_of
from shared.one_off import InvalidRunAtError, NoSlotLeftError, OneOffSchedule

AT = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # Berlin springs forward at 01:00 UTC that day
BERLIN = ZoneInfo("Europe/Berlin")


def test_the_one_slot_before_and_nothing_after() -> None:
    schedule = OneOffSchedule.parse(AT)
    assert schedule.next_after(AT - timedelta(days=3)) == AT
    assert schedule.next_after(AT - timedelta(microseconds=1)) == AT
    with pytest.raises(NoSlotLeftError):
        schedule.next_after(AT)
    assert schedule.next_times(AT - timedelta(hours=1), 10) == [AT]
    assert schedule.next_times(AT, 10) == []


def test_slots_between_holds_the_instant_only_inside_the_window() -> None:
    schedule = OneOffSchedule.parse(AT)
    assert schedule.slots_between(AT, AT, 5) == [AT]
    assert schedule.slots_between(AT - timedelta(hours=1), AT + timedelta(hours=1), 5) == [AT]
    assert schedule.slots_between(AT + timedelta(seconds=1), AT + timedelta(hours=1), 5) == []
    assert schedule.slots_between(AT, AT, 0) == []


def test_the_instant_is_the_same_whatever_zone_it_is_written_in_and_across_dst() -> None:
    # 03:30 CEST is 01:30 UTC: the wall clock jumped from 02:00 to 03:00 that night.
    written_in_berlin = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    schedule = schedule_of(
        cron=None, every=None, anchor_at=None, timezone="Europe/Berlin", run_at=written_in_berlin
    )
    assert schedule == OneOffSchedule(AT)
    assert schedule.next_after(AT - timedelta(hours=5)) == AT
    # A zone does not change a one-off's slot: only how it is shown.
    assert schedule_of(cron=None, every=None, anchor_at=None, timezone="Asia/Tokyo", run_at=AT) == (
        schedule
    )


def test_whole_seconds_and_no_interval() -> None:
    schedule = OneOffSchedule.parse(AT + timedelta(microseconds=700))
    assert schedule.at == AT
    assert not schedule.has_seconds
    assert schedule.min_interval(AT) == timedelta.max


def test_a_naive_instant_is_refused_naming_run_at() -> None:
    with pytest.raises(InvalidRunAtError) as refused:
        OneOffSchedule.parse(datetime(2026, 5, 1, 8, 0))
    assert refused.value.field == "runAt"


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"cron": "* * * * *", "runAt": AT}, "runAt"),
        ({"every": "PT1H", "runAt": AT}, "runAt"),
        ({}, "cron"),
    ],
)
def test_run_at_is_a_third_kind_exactly_one_of(given: dict[str, object], field: str) -> None:
    with pytest.raises(MissingScheduleError) as refused:
        exactly_one_kind(given)
    assert refused.value.field == field
    assert exactly_one_kind({"runAt": AT}) == "runAt"
