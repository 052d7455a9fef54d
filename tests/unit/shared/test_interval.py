"""Interval schedules: ISO 8601 durations, slot arithmetic on the anchor's grid, DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.interval import IntervalSchedule, InvalidIntervalError, anchor_of, parse_every
from shared.job_schedule import MissingScheduleError, exactly_one_kind, schedule_of
from shared.schedule import Schedule

ANCHOR = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("PT90M", timedelta(minutes=90)),
        ("PT36H", timedelta(hours=36)),
        ("P1D", timedelta(hours=24)),
        ("P1W", timedelta(days=7)),
        ("P1DT12H", timedelta(hours=36)),
        ("PT1H30M", timedelta(minutes=90)),
        ("PT45S", timedelta(seconds=45)),
        ("pt90m", timedelta(minutes=90)),
        (" PT2M ", timedelta(minutes=2)),
        ("P366D", timedelta(days=366)),
    ],
)
def test_durations_have_their_exact_length(text: str, length: timedelta) -> None:
    assert parse_every(text) == length


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("P1M", "months and years"),
        ("P1Y", "months and years"),
        ("P1Y2M", "months and years"),
        ("P2M1D", "months and years"),
        ("PT0M", "longer than zero"),
        ("P0D", "longer than zero"),
        ("-PT1H", "positive"),
        ("+PT1H", "positive"),
        ("PT1.5H", "fractions"),
        ("PT1,5H", "fractions"),
        ("P", "not an ISO 8601 duration"),
        ("PT", "not an ISO 8601 duration"),
        ("P1DT", "not an ISO 8601 duration"),
        ("90", "not an ISO 8601 duration"),
        ("PT90", "not an ISO 8601 duration"),
        ("1H", "not an ISO 8601 duration"),
        ("PT1M1H", "not an ISO 8601 duration"),
        ("P1H", "not an ISO 8601 duration"),
        ("", "ISO 8601 duration"),
        ("P367D", "at most 366 days"),
        ("PT" + "9" * 37 + "H", "at most 366 days"),
        ("P" + "9" * 38 + "W", "at most 366 days"),
        ("P" + "1" * 50 + "D", "too long"),
    ],
)
def test_bad_durations_are_refused_naming_every(text: str, problem: str) -> None:
    with pytest.raises(InvalidIntervalError) as raised:
        parse_every(text)
    assert raised.value.field == "every"
    assert problem in raised.value.message


def test_slots_are_anchor_plus_multiples_of_every() -> None:
    schedule = IntervalSchedule.parse("PT90M", ANCHOR)
    step = timedelta(minutes=90)
    assert schedule.next_after(ANCHOR - timedelta(days=3)) == ANCHOR  # k = 0 is a slot
    assert schedule.next_after(ANCHOR) == ANCHOR + step
    assert schedule.next_after(ANCHOR + step - timedelta(microseconds=1)) == ANCHOR + step
    assert schedule.next_times(ANCHOR + timedelta(minutes=1), 3) == [
        ANCHOR + step,
        ANCHOR + 2 * step,
        ANCHOR + 3 * step,
    ]
    assert schedule.slots_between(ANCHOR + step, ANCHOR + 3 * step, 10) == [
        ANCHOR + step,
        ANCHOR + 2 * step,
        ANCHOR + 3 * step,
    ]
    assert schedule.slots_between(ANCHOR + step, ANCHOR + 3 * step, 2) == [
        ANCHOR + step,
        ANCHOR + 2 * step,
    ]
    assert schedule.slots_between(ANCHOR + 3 * step, ANCHOR + step, 10) == []
    assert schedule.slots_between(ANCHOR - step, ANCHOR, 10) == [ANCHOR]
    assert schedule.min_interval(ANCHOR) == step


def test_the_anchor_is_a_whole_second_in_utc() -> None:
    moment = datetime(2026, 7, 1, 10, 0, 0, 987_000, tzinfo=BERLIN)
    assert anchor_of(moment) == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        anchor_of(datetime(2026, 7, 1))


def test_a_dst_change_does_not_move_interval_slots() -> None:
    # Europe/Berlin springs forward at 2026-03-29 01:00 UTC (02:00 -> 03:00 local) and falls
    # back at 2026-10-25 01:00 UTC (03:00 -> 02:00 local).
    for anchor in (ANCHOR, datetime(2026, 10, 24, 22, 0, tzinfo=UTC)):
        slots = IntervalSchedule.parse("PT90M", anchor).next_times(anchor, 8)
        gaps = {later - earlier for earlier, later in pairwise(slots)}
        assert gaps == {timedelta(minutes=90)}  # evenly spaced in UTC
        offsets = {slot.astimezone(BERLIN).utcoffset() for slot in slots}
        assert len(offsets) == 2  # the change happened within these slots
    spring = IntervalSchedule.parse("PT90M", ANCHOR).next_times(ANCHOR, 3)
    local = [slot.astimezone(BERLIN).strftime("%H:%M%z") for slot in spring]
    # Shown in the job's zone, the wall-clock gap across the change is 2 h 30 min.
    assert local == ["00:30+0100", "03:00+0200", "04:30+0200"]


def test_one_day_is_24_hours_not_the_same_wall_time() -> None:
    anchor = datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 in Berlin (winter time)
    daily = IntervalSchedule.parse("P1D", anchor).next_after(anchor)
    cron = Schedule.parse("0 8 * * *", "Europe/Berlin").next_after(daily - timedelta(hours=2))
    assert daily.astimezone(BERLIN).hour == 9  # 24 h later it is 09:00 summer time
    assert cron.astimezone(BERLIN).hour == 8
    assert daily - anchor == timedelta(days=1)


def test_seconds_granular_intervals_are_flagged() -> None:
    assert IntervalSchedule.parse("PT90S", ANCHOR).has_seconds
    assert not IntervalSchedule.parse("PT120S", ANCHOR).has_seconds
    assert not IntervalSchedule.parse("PT2M", ANCHOR).has_seconds


def test_slots_past_the_calendar_are_a_value_error() -> None:
    schedule = IntervalSchedule.parse("P366D", datetime(9999, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="calendar"):
        schedule.next_after(datetime(9999, 6, 1, tzinfo=UTC))


def test_a_job_has_exactly_one_schedule_kind() -> None:
    assert exactly_one_kind({"cron": "* * * * *", "every": None}) == "cron"
    assert exactly_one_kind({"every": "PT1H"}) == "every"
    with pytest.raises(MissingScheduleError) as none:
        exactly_one_kind({"cron": None, "every": None})
    assert none.value.field == "cron"
    assert "`cron` or `every`" in none.value.message
    with pytest.raises(MissingScheduleError) as both:
        exactly_one_kind({"cron": "* * * * *", "every": "PT1H"})
    assert both.value.field == "every"
    assert "only one of `cron`, `every`" in both.value.message


def test_schedule_of_builds_either_kind() -> None:
    cron = schedule_of(cron="0 8 * * *", every=None, anchor_at=None, timezone="Europe/Berlin")
    assert isinstance(cron, Schedule)
    interval = schedule_of(cron=None, every="PT36H", anchor_at=ANCHOR, timezone="Europe/Berlin")
    assert isinstance(interval, IntervalSchedule)
    assert interval.next_after(ANCHOR) == ANCHOR + timedelta(hours=36)
    with pytest.raises(MissingScheduleError, match="anchor"):
        schedule_of(cron=None, every="PT36H", anchor_at=None)
    with pytest.raises(InvalidIntervalError):
        schedule_of(cron=None, every="P1M", anchor_at=ANCHOR)


@given(
    seconds=st.integers(min_value=1, max_value=366 * 86_400),
    offset=st.integers(min_value=-(10**9), max_value=10**9),
    micros=st.integers(min_value=0, max_value=999_999),
)
@settings(max_examples=300, deadline=None)
def test_next_after_is_the_first_grid_slot_strictly_later(
    seconds: int, offset: int, micros: int
) -> None:
    schedule = IntervalSchedule(f"PT{seconds}S", ANCHOR, timedelta(seconds=seconds))
    moment = ANCHOR + timedelta(seconds=offset, microseconds=micros)
    slot = schedule.next_after(moment)
    assert slot > moment
    assert (slot - ANCHOR) % schedule.length == timedelta(0)
    assert slot >= ANCHOR
    assert slot == ANCHOR or slot - schedule.length <= moment
    window = schedule.slots_between(moment, slot + 2 * schedule.length, 10)
    assert window[-2:] == [slot + schedule.length, slot + 2 * schedule.length]
    assert window[0] in (slot, slot - schedule.length)  # the slot at `moment` itself counts
