"""The backfill window: past only, [from, to), at most MAX_BACKFILL_SLOTS slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.backfill import MAX_BACKFILL_SLOTS, WindowError, window_slots
from shared.schedule import Schedule

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOURLY = Schedule.parse("0 * * * *", "UTC")


def test_the_window_includes_from_and_excludes_to() -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    slots = window_slots(HOURLY, start, start + timedelta(hours=3), NOW)
    assert slots == [start + timedelta(hours=hours) for hours in range(3)]


def test_offsets_are_honoured() -> None:
    berlin = datetime.fromisoformat("2026-11-23T09:00:00+01:00")
    assert window_slots(HOURLY, berlin, berlin + timedelta(hours=1), NOW) == [
        datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    ]


def test_exactly_the_cap_is_accepted_and_one_more_names_to() -> None:
    minutely = Schedule.parse("* * * * *", "UTC")
    start = NOW - timedelta(days=2)
    end = start + timedelta(minutes=MAX_BACKFILL_SLOTS)
    assert len(window_slots(minutely, start, end, NOW)) == MAX_BACKFILL_SLOTS
    with pytest.raises(WindowError) as raised:
        window_slots(minutely, start, end + timedelta(minutes=1), NOW)
    assert raised.value.field == "to"
    assert "end it at or before 2026-11-22T04:40:00Z" in raised.value.message


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (NOW + timedelta(hours=1), NOW + timedelta(hours=2), "from"),  # in the future
        (NOW - timedelta(hours=1), NOW + timedelta(hours=1), "to"),  # ends in the future
        (NOW - timedelta(hours=1), NOW - timedelta(hours=2), "to"),  # backwards
        (NOW - timedelta(hours=1), NOW - timedelta(hours=1), "to"),  # empty
        (datetime(2026, 11, 1), NOW - timedelta(hours=1), "from"),  # naive
        (NOW - timedelta(hours=3), datetime(2026, 11, 23), "to"),  # naive
    ],
)
def test_unusable_windows_name_their_field(start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(WindowError) as raised:
        window_slots(HOURLY, start, end, NOW)
    assert raised.value.field == field
