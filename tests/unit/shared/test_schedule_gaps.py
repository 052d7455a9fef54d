"""The exact shortest gap (issue 11): the wall pattern plus every offset transition in range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.schedule import Schedule
from shared.schedule_gaps import offset_transitions, shortest_gap, wall_pattern_gap


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        # 02:59:59 does not exist on 2027-03-28 in Berlin: it fires at 03:00:00 CEST, one second
        # after 01:59:59 CET. The transition is 361 days after `after`: beyond 500 samples.
        ("59 59 1,2 * * *", "Europe/Berlin", utc(2026, 4, 1), timedelta(seconds=1)),
        # The same in New York (2027-03-14) and on Lord Howe's half-hour jump.
        ("59 59 1,2 * * *", "America/New_York", utc(2026, 4, 1), timedelta(seconds=1)),
        ("0 * * * *", "Australia/Lord_Howe", utc(2026, 4, 6), timedelta(minutes=30)),
        # No offset change shortens these.
        ("0 */5 * * * *", "Europe/Berlin", utc(2026, 4, 1), timedelta(minutes=5)),
        ("0 30 2 * * *", "Europe/Berlin", utc(2026, 4, 1), timedelta(hours=23, minutes=30)),
        ("0 0 8 * * 1-5", "UTC", utc(2026, 1, 1), timedelta(days=1)),
        # Across days: 23:00 on a Monday to 00:00 the next Monday is a week away; 23:00 to
        # 00:00 the next day only where two matching days follow each other.
        ("0 0 0,23 * * 1", "UTC", utc(2026, 1, 1), timedelta(hours=23)),
        ("0 0 0,23 1,31 * *", "UTC", utc(2026, 1, 1), timedelta(hours=1)),
        ("59 59 23 31 12 *", "UTC", utc(2026, 1, 1), timedelta(days=365)),
    ],
)
def test_shortest_gap_is_exact(cron: str, zone: str, after: datetime, expected: timedelta) -> None:
    assert shortest_gap(Schedule.parse(cron, zone), after) == expected


def test_sampling_500_fires_missed_the_far_transition() -> None:
    # What the old check did: 500 fires (250 days) never reach the March 2027 gap.
    schedule = Schedule.parse("59 59 1,2 * * *", "Europe/Berlin")
    assert schedule.min_interval(utc(2026, 4, 1)) == timedelta(hours=1)
    assert wall_pattern_gap(schedule) == timedelta(hours=1)


def test_transitions_are_found_to_the_second() -> None:
    found = offset_transitions("Europe/Berlin", 2026)
    assert found[:2] == (utc(2026, 3, 29, 1), utc(2026, 10, 25, 1))
    assert len(found) == 60  # two a year for the 30-year horizon
    assert offset_transitions("UTC", 2026) == ()
