"""`L` (last day of the month) and `weekday#n` (nth weekday of the month), DST included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.schedule import InvalidCronError, Schedule

FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


def _fires(cron: str, zone: str = "UTC", after: datetime = FEB_1, count: int = 4) -> list[str]:
    times = Schedule.parse(cron, zone).next_times(after, count)
    return [time.isoformat().replace("+00:00", "Z") for time in times]


def test_last_day_of_month_follows_month_lengths_and_leap_years() -> None:
    assert _fires("0 0 L * *") == [
        "2026-02-28T00:00:00Z",
        "2026-03-31T00:00:00Z",
        "2026-04-30T00:00:00Z",
        "2026-05-31T00:00:00Z",
    ]
    assert _fires("0 0 L 2 *", count=3) == [
        "2026-02-28T00:00:00Z",
        "2027-02-28T00:00:00Z",
        "2028-02-29T00:00:00Z",
    ]
    assert _fires("0 0 1,15,l * *", count=3) == [
        "2026-02-15T00:00:00Z",
        "2026-02-28T00:00:00Z",
        "2026-03-01T00:00:00Z",
    ]


def test_last_day_keeps_the_wall_clock_across_a_dst_change() -> None:
    # Berlin: February is UTC+1, the last day of March is already UTC+2.
    assert _fires("0 12 L * *", "Europe/Berlin", count=2) == [
        "2026-02-28T11:00:00Z",
        "2026-03-31T10:00:00Z",
    ]


def test_nth_weekday_of_the_month() -> None:
    assert _fires("0 9 * * FRI#2", count=3) == [
        "2026-02-13T09:00:00Z",
        "2026-03-13T09:00:00Z",
        "2026-04-10T09:00:00Z",
    ]
    # A fifth Sunday exists in some months only; 7 is Sunday too.
    assert _fires("0 0 * * 7#5", count=2) == ["2026-03-29T00:00:00Z", "2026-05-31T00:00:00Z"]
    assert _fires("0 0 * * MON#1,FRI#3", count=2) == [
        "2026-02-02T00:00:00Z",
        "2026-02-20T00:00:00Z",
    ]


def test_nth_weekday_on_the_spring_forward_day_fires_after_the_gap() -> None:
    # 2026-03-29, the fifth Sunday of March, Berlin skips 02:00-03:00: 02:30 fires at 03:00.
    assert _fires("30 2 * 3 SUN#5", "Europe/Berlin", count=1) == ["2026-03-29T01:00:00Z"]


def test_nth_weekday_on_the_fall_back_day_fires_once() -> None:
    # 2026-10-25, the fourth Sunday of October, Berlin repeats 02:00-03:00: 02:30 fires once,
    # at its first occurrence (CEST), and the next fire is a year later.
    assert _fires("30 2 * 10 SUN#4", "Europe/Berlin", count=2) == [
        "2026-10-25T00:30:00Z",
        "2027-10-24T00:30:00Z",
    ]


def test_with_seconds_and_normalised_text() -> None:
    schedule = Schedule.parse("15 0 0 l * *")
    assert schedule.cron == "15 0 0 L * *"
    assert _fires("15 0 0 L * *", count=1) == ["2026-02-28T00:00:15Z"]
    assert Schedule.parse("0 9 * * fri#2").cron == "0 9 * * FRI#2"


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 0 15 * 5#1", "day-of-week field: '#' cannot be combined with a day-of-month"),
        ("0 0 * * 1,5#3", "an nth weekday ('#') cannot be listed with plain weekdays"),
        ("0 0 * * 5#6", "n in weekday#n must be 1-5"),
        ("0 0 * * 5#0", "n in weekday#n must be 1-5"),
        ("0 0 * * FUN#1", "day-of-week field: 'FUN' is not a valid value"),
        ("0 0 * L *", "month field: 'L' (last day of the month) belongs in day-of-month"),
        ("0 0 * * L", "day-of-week field: 'L' (last day of the month) belongs in day-of-month"),
        ("0 0 2#1 * *", "day-of-month field: '2#1' is not valid"),
        ("0 0 L-2 * *", "day-of-month field: 'L' is not a valid value"),
    ],
)
def test_misuse_names_the_field(cron: str, message: str) -> None:
    with pytest.raises(InvalidCronError) as raised:
        Schedule.parse(cron)
    assert message in raised.value.message
