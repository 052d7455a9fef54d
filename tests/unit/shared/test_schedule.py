"""Unit tests for the cron schedule engine, with DST cases worked out by hand from tz rules."""

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.schedule import (
    InvalidCronError,
    InvalidTimezoneError,
    Schedule,
    ScheduleError,
    parse_timezone,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def at(text: str) -> datetime:
    """A UTC instant written as "YYYY-MM-DD HH:MM[:SS]"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(cron: str, tz: str, after: datetime, count: int) -> list[datetime]:
    return Schedule.parse(cron, tz).next_times(after, count)


# --- DST, worked out by hand ---------------------------------------------------------------
# America/New_York: EST -5 / EDT -4. 2026: gap Mar 8 02:00->03:00 (07:00Z), repeat Nov 1
# 01:00-02:00 (clocks back at 06:00Z). 2027: gap Mar 14 (07:00Z), repeat Nov 7 (06:00Z).
# Europe/London: GMT 0 / BST +1. 2026: gap Mar 29 01:00->02:00 (01:00Z), repeat Oct 25 01:00-02:00
# (back at 01:00Z). 2027: gap Mar 28, repeat Oct 31.
# Australia/Lord_Howe: +10:30 / +11. 2026: repeat Apr 5 01:30-02:00 (back at Apr 4 15:00Z),
# gap Oct 4 02:00->02:30 (Oct 3 15:30Z). 2027: repeat Apr 4 (Apr 3 15:00Z),
# gap Oct 3 (Oct 2 15:30Z).
# Australia/Sydney: AEST +10 / AEDT +11. 2026: repeat Apr 5 02:00-03:00 (back at Apr 4 16:00Z),
# gap Oct 4 02:00->03:00 (Oct 3 16:00Z). 2027: repeat Apr 4 (Apr 3 16:00Z),
# gap Oct 3 (Oct 2 16:00Z).
# Asia/Kolkata: +05:30, no DST.

DST_CASES = [
    # New York gap: 02:30 does not exist on Mar 8 -> 03:00 EDT.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07 00:00",
        ["2026-03-07 07:30", "2026-03-08 07:00", "2026-03-09 06:30"],
    ),
    # Several wall times in one gap fire once.
    (
        "*/15 2 * * *",
        "America/New_York",
        "2026-03-08 06:00",
        ["2026-03-08 07:00", "2026-03-09 06:00", "2026-03-09 06:15"],
    ),
    (
        "30 2 * * *",
        "America/New_York",
        "2027-03-13 12:00",
        ["2027-03-14 07:00", "2027-03-15 06:30"],
    ),
    # New York repeat: 01:30 fires at the EDT occurrence only.
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31 00:00",
        ["2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30"],
    ),
    (
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01 04:45",
        ["2026-11-01 05:00", "2026-11-01 05:30", "2026-11-01 07:00", "2026-11-01 07:30"],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2027-11-06 12:00",
        ["2027-11-07 05:30", "2027-11-08 06:30"],
    ),
    # `after` inside the second pass of the repeated hour (01:10 EST).
    (
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01 06:10",
        ["2026-11-01 07:00", "2026-11-01 07:30"],
    ),
    ("30 1 * * *", "America/New_York", "2026-11-01 06:10", ["2026-11-02 06:30"]),
    # London gap and repeat.
    (
        "30 1 * * *",
        "Europe/London",
        "2026-03-28 00:00",
        ["2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"],
    ),
    (
        "30 1 * * *",
        "Europe/London",
        "2026-10-24 00:00",
        ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"],
    ),
    (
        "0 * * * *",
        "Europe/London",
        "2026-10-24 23:30",
        ["2026-10-25 00:00", "2026-10-25 02:00", "2026-10-25 03:00"],
    ),
    ("30 1 * * *", "Europe/London", "2027-03-27 12:00", ["2027-03-28 01:00", "2027-03-29 00:30"]),
    ("30 1 * * *", "Europe/London", "2027-10-30 12:00", ["2027-10-31 00:30", "2027-11-01 01:30"]),
    # Lord Howe: 30-minute gap and repeat.
    (
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-02 00:00",
        ["2026-10-02 15:45", "2026-10-03 15:30", "2026-10-04 15:15"],
    ),
    (
        "*/10 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03 15:00",
        ["2026-10-03 15:30", "2026-10-03 15:40", "2026-10-03 15:50", "2026-10-04 15:00"],
    ),
    (
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-03 00:00",
        ["2026-04-03 14:45", "2026-04-04 14:45", "2026-04-05 15:15"],
    ),
    (
        "*/15 * * * *",
        "Australia/Lord_Howe",
        "2026-04-04 14:20",
        ["2026-04-04 14:30", "2026-04-04 14:45", "2026-04-04 15:30", "2026-04-04 15:45"],
    ),
    ("*/15 * * * *", "Australia/Lord_Howe", "2026-04-04 15:10", ["2026-04-04 15:30"]),
    (
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2027-10-02 00:00",
        ["2027-10-02 15:30", "2027-10-03 15:15"],
    ),
    (
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2027-04-03 00:00",
        ["2027-04-03 14:45", "2027-04-04 15:15"],
    ),
    # Sydney (southern hemisphere): repeat in April, gap in October.
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2026-04-03 00:00",
        ["2026-04-03 15:30", "2026-04-04 15:30", "2026-04-05 16:30"],
    ),
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2026-10-02 00:00",
        ["2026-10-02 16:30", "2026-10-03 16:00", "2026-10-04 15:30"],
    ),
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2027-04-03 00:00",
        ["2027-04-03 15:30", "2027-04-04 16:30"],
    ),
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2027-10-02 00:00",
        ["2027-10-02 16:00", "2027-10-03 15:30"],
    ),
    # Kolkata has no DST: same UTC time on the other zones' transition days.
    (
        "0 9 * * *",
        "Asia/Kolkata",
        "2026-03-07 00:00",
        ["2026-03-07 03:30", "2026-03-08 03:30", "2026-03-09 03:30"],
    ),
    (
        "30 2 * * *",
        "Asia/Kolkata",
        "2026-10-31 00:00",
        ["2026-10-31 21:00", "2026-11-01 21:00", "2026-11-02 21:00"],
    ),
    # Seconds across a gap and a repeat.
    (
        "*/20 * * * * *",
        "America/New_York",
        "2026-03-08 06:59:30",
        ["2026-03-08 06:59:40", "2026-03-08 07:00", "2026-03-08 07:00:20", "2026-03-08 07:00:40"],
    ),
    (
        "*/20 * * * * *",
        "America/New_York",
        "2026-11-01 05:59:30",
        ["2026-11-01 05:59:40", "2026-11-01 07:00", "2026-11-01 07:00:20"],
    ),
    (
        "*/20 * * * * *",
        "America/New_York",
        "2026-11-01 06:30:05",
        ["2026-11-01 07:00", "2026-11-01 07:00:20"],
    ),
    (
        "*/20 * * * * *",
        "Australia/Lord_Howe",
        "2026-10-03 15:29:30",
        ["2026-10-03 15:29:40", "2026-10-03 15:30", "2026-10-03 15:30:20"],
    ),
]


@pytest.mark.parametrize(("cron", "tz", "after", "expected"), DST_CASES)
def test_dst_fire_times(cron: str, tz: str, after: str, expected: list[str]) -> None:
    assert fires(cron, tz, at(after), len(expected)) == [at(text) for text in expected]


TRANSITIONS = [
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("America/New_York", utc(2027, 3, 14, 7)),
    ("America/New_York", utc(2027, 11, 7, 6)),
    ("Europe/London", utc(2026, 3, 29, 1)),
    ("Europe/London", utc(2026, 10, 25, 1)),
    ("Europe/London", utc(2027, 3, 28, 1)),
    ("Europe/London", utc(2027, 10, 31, 1)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 15)),
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("Australia/Lord_Howe", utc(2027, 4, 3, 15)),
    ("Australia/Lord_Howe", utc(2027, 10, 2, 15, 30)),
    ("Australia/Sydney", utc(2026, 4, 4, 16)),
    ("Australia/Sydney", utc(2026, 10, 3, 16)),
    ("Australia/Sydney", utc(2027, 4, 3, 16)),
    ("Australia/Sydney", utc(2027, 10, 2, 16)),
]


@pytest.mark.parametrize(("tz", "instant"), TRANSITIONS)
def test_transition_table_matches_tzdata(tz: str, instant: datetime) -> None:
    zone = ZoneInfo(tz)
    before = (instant - timedelta(seconds=1)).astimezone(zone).utcoffset()
    assert before != instant.astimezone(zone).utcoffset()


WALL_MATCHERS = {
    "*/15 * * * *": lambda w: w.minute % 15 == 0,
    "30 2 * * *": lambda w: (w.hour, w.minute) == (2, 30),
    "0,45 1-3 * * *": lambda w: w.minute in (0, 45) and 1 <= w.hour <= 3,
    "*/10 2 * * *": lambda w: w.hour == 2 and w.minute % 10 == 0,
    "5 * * * *": lambda w: w.minute == 5,
}


def offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    value = moment.astimezone(zone).utcoffset()
    assert value is not None
    return value


def oracle(match, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Scan UTC minutes: fire at a wall time's first occurrence, or where a gap ends."""
    result = []
    minute = timedelta(minutes=1)
    moment = start
    while moment <= end:
        wall = moment.astimezone(zone).replace(tzinfo=None, fold=0)
        skipped = []
        if offset(moment, zone) > offset(moment - minute, zone):  # clocks jumped forward
            skipped_wall = (moment - minute).astimezone(zone).replace(tzinfo=None) + minute
            while skipped_wall < wall:
                skipped.append(skipped_wall)
                skipped_wall += minute
        first_pass = wall.replace(tzinfo=zone).astimezone(UTC) == moment
        if (match(wall) and first_pass) or any(match(w) for w in skipped):
            result.append(moment)
        moment += minute
    return result


@pytest.mark.parametrize(("tz", "instant"), TRANSITIONS)
@pytest.mark.parametrize("cron", list(WALL_MATCHERS))
def test_matches_brute_force_oracle(cron: str, tz: str, instant: datetime) -> None:
    start, end = instant - timedelta(hours=5), instant + timedelta(hours=5)
    expected = oracle(WALL_MATCHERS[cron], ZoneInfo(tz), start, end)
    assert Schedule.parse(cron, tz).slots_between(start, end, 1000) == expected


# --- Syntax ---------------------------------------------------------------------------------

MACROS = [
    ("@hourly", "0 * * * *", utc(2026, 1, 1, 1)),
    ("@daily", "0 0 * * *", utc(2026, 1, 2)),
    ("@midnight", "0 0 * * *", utc(2026, 1, 2)),
    ("@weekly", "0 0 * * 0", utc(2026, 1, 4)),  # 2026-01-01 is a Thursday
    ("@monthly", "0 0 1 * *", utc(2026, 2, 1)),
    ("@yearly", "0 0 1 1 *", utc(2027, 1, 1)),
    ("@annually", "0 0 1 1 *", utc(2027, 1, 1)),
    ("  @DAILY ", "0 0 * * *", utc(2026, 1, 2)),
]


@pytest.mark.parametrize(("macro", "cron", "first"), MACROS)
def test_macros(macro: str, cron: str, first: datetime) -> None:
    schedule = Schedule.parse(macro)
    assert schedule.cron == cron
    assert not schedule.has_seconds
    assert schedule.next_after(utc(2026, 1, 1)) == first


def test_seconds_field() -> None:
    schedule = Schedule.parse("*/10 * * * * *")
    assert schedule.has_seconds
    assert schedule.next_times(utc(2025, 12, 31, 23, 59, 55), 4) == [
        utc(2026, 1, 1),
        utc(2026, 1, 1, 0, 0, 10),
        utc(2026, 1, 1, 0, 0, 20),
        utc(2026, 1, 1, 0, 0, 30),
    ]
    daily = Schedule.parse("30 15 10 * * *", "Europe/Berlin")  # 10:15:30 CET = 09:15:30Z
    assert daily.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 9, 15, 30)


NAMED = [
    (
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        ["2026-01-01 08:00", "2026-01-02 08:00", "2026-01-05 08:00"],
    ),
    (
        "0 9 * * mon-fri",
        "Europe/Berlin",
        ["2026-01-01 08:00", "2026-01-02 08:00", "2026-01-05 08:00"],
    ),
    ("0 0 1 JAN,jul *", "UTC", ["2026-07-01 00:00", "2027-01-01 00:00"]),
    ("0 12 * * 7", "UTC", ["2026-01-04 12:00", "2026-01-11 12:00"]),
    ("0 12 * * SUN", "UTC", ["2026-01-04 12:00", "2026-01-11 12:00"]),
    (
        "1-10/3 0 * * *",
        "UTC",
        [
            "2026-01-01 00:01",
            "2026-01-01 00:04",
            "2026-01-01 00:07",
            "2026-01-01 00:10",
            "2026-01-02 00:01",
        ],
    ),
    ("50/5 0 * * *", "UTC", ["2026-01-01 00:50", "2026-01-01 00:55", "2026-01-02 00:50"]),
    ("0 0 * 12/1 *", "UTC", ["2026-12-01 00:00", "2026-12-02 00:00"]),
    ("0 0 * * 5-5", "UTC", ["2026-01-02 00:00", "2026-01-09 00:00"]),
    ("0 0 * * */3", "UTC", ["2026-01-03 00:00", "2026-01-04 00:00", "2026-01-07 00:00"]),
    ("0 0 ? * 1", "UTC", ["2026-01-05 00:00", "2026-01-12 00:00"]),
    # Both day fields restricted: either may match (classic cron OR).
    (
        "0 0 13 * FRI",
        "UTC",
        ["2026-01-02 00:00", "2026-01-09 00:00", "2026-01-13 00:00", "2026-01-16 00:00"],
    ),
    ("0 0 29 2 *", "UTC", ["2028-02-29 00:00", "2032-02-29 00:00"]),
    ("0 0 31 2 MON", "UTC", ["2026-02-02 00:00", "2026-02-09 00:00"]),
]


@pytest.mark.parametrize(("cron", "tz", "expected"), NAMED)
def test_names_ranges_steps(cron: str, tz: str, expected: list[str]) -> None:
    assert fires(cron, tz, utc(2026, 1, 1), len(expected)) == [at(text) for text in expected]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("  0\t9 *  * mon-fri ", "0 9 * * MON-FRI"),
        ("0 0 ? * *", "0 0 * * *"),
        ("*/5 * * * * *", "*/5 * * * * *"),
    ],
)
def test_normalisation(raw: str, normalised: str) -> None:
    assert Schedule.parse(raw).cron == normalised


BAD_CRONS = [
    ("60 * * * *", "minute field: 60 is out of range 0-59"),
    ("* 25 * * *", "hour field: 25 is out of range 0-23"),
    ("* * 0 * *", "day-of-month field: 0 is out of range 1-31"),
    ("* * 32 * *", "day-of-month field: 32 is out of range 1-31"),
    ("* * * 13 *", "month field: 13 is out of range 1-12"),
    ("* * * 0 *", "month field: 0 is out of range 1-12"),
    ("* * * * 8", "day-of-week field: 8 is out of range 0-7"),
    ("60 * * * * *", "second field: 60 is out of range 0-59"),
    ("0 1-99 * * *", "hour field: 99 is out of range 0-23"),
    ("* * * * FOO", "day-of-week field: 'FOO' is not a valid value"),
    ("* * * * JAN", "day-of-week field: 'JAN' is not a valid value"),
    ("* * * FOO *", "month field: 'FOO' is not a valid value"),
    ("MON * * * *", "minute field: 'MON' is not a valid value"),
    ("-5 * * * *", "minute field: '-5' is not a valid value"),
    ("*/0 * * * *", "minute field: step 0 is out of range 1-59"),
    ("* */24 * * *", "hour field: step 24 is out of range 1-23"),
    ("*/x * * * *", "minute field: step 'x' is not a number"),
    ("10-5 * * * *", "minute field: range '10-5' is reversed"),
    ("1,,2 * * * *", "minute field: empty list item in '1,,2'"),
    ("? * * * *", "minute field: '?' is only allowed in day-of-month and day-of-week"),
    ("0 0 LW * *", "day-of-month field: 'LW' is not a valid value"),
    ("0 0 * * 5L", "day-of-week field: '5L' is not a valid value"),
    ("0 0 * * MON#2#1", "day-of-week field: 'MON#2#1' is not valid"),
    ("H * * * *", "minute field: 'H' is not a valid value"),
    ("\u0663 * * * *", "minute field: '\u0663' is not a valid value"),  # Arabic-Indic digit
    ("0 0 * * \u017fun", "day-of-week field: '\u017fun' is not a valid value"),  # long s
    ("* * *", "expected 5 fields (or 6 with a leading seconds field), got 3"),
    ("hello world", "expected 5 fields (or 6 with a leading seconds field), got 2"),
    ("0 0 * * * * 2026", "got 7: a year field is not supported"),
    ("1 2 3 4 5 6 7 8", "got 8"),
    ("", "cron expression must not be empty"),
    (" \t\n", "cron expression must not be empty"),
    ("0 " * 101, "too long (max 200 characters)"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 4,6,9,11 *", "never fires"),
    ("0 0 0 30-31 FEB *", "never fires"),
    ("@reboot", "'@reboot' is not supported"),
    ("@every_5m", "unknown macro '@every_5m'"),
    ("@daily 5", "cannot be combined with other fields"),
]


@pytest.mark.parametrize(("cron", "message"), BAD_CRONS)
def test_invalid_cron(cron: str, message: str) -> None:
    with pytest.raises(InvalidCronError) as caught:
        Schedule.parse(cron)
    assert message in caught.value.message
    assert str(caught.value) == caught.value.message
    assert caught.value.field == "cron"
    assert isinstance(caught.value, ScheduleError)
    assert isinstance(caught.value, ValueError)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidCronError):
        Schedule("61 * * * *", "UTC", False)
    with pytest.raises(InvalidTimezoneError):
        Schedule("* * * * *", "Mars/Base", False)
    with pytest.raises(ValueError, match="has_seconds"):
        Schedule("* * * * *", "UTC", True)
    assert Schedule("0 0 * * *", "UTC", False) == Schedule.parse("@daily")


# --- Time zones -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+2"]
)
def test_valid_timezones(name: str) -> None:
    assert parse_timezone(name).key == name


def test_timezone_is_trimmed() -> None:
    assert Schedule.parse("* * * * *", " Europe/Berlin ").timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Mars/Base", "'Mars/Base' is not an IANA time zone (e.g. 'Europe/Berlin')"),
        ("", "time zone must not be empty"),
        ("   ", "time zone must not be empty"),
        ("../../etc/passwd", "is not an IANA time zone"),
        ("/etc/localtime", "is not an IANA time zone"),
        ("localtime", "is not an IANA time zone"),
        ("posixrules", "is not an IANA time zone"),
        ("right/UTC", "is not an IANA time zone"),
        ("+02:00", "is not an IANA time zone"),
        ("UTC+2", "is not an IANA time zone"),
        ("UTC\x00", "is not an IANA time zone"),
        ("Europe/Berlin\x00/x", "is not an IANA time zone"),
        ("europe/berlin", "is not an IANA time zone"),
        ("Europe/", "is not an IANA time zone"),
        ("Europe", "is not an IANA time zone"),
        ("A" * 65, "too long (max 64 characters)"),
    ],
)
def test_invalid_timezones(name: str, message: str) -> None:
    with pytest.raises(InvalidTimezoneError) as caught:
        parse_timezone(name)
    assert message in caught.value.message
    assert caught.value.field == "timezone"
    with pytest.raises(InvalidTimezoneError):
        Schedule.parse("* * * * *", name)


# --- Query API ------------------------------------------------------------------------------


def test_results_are_utc_whole_seconds() -> None:
    schedule = Schedule.parse("* * * * * *", "Asia/Kolkata")
    after = datetime(2026, 1, 1, 5, 30, 0, 500_000, tzinfo=ZoneInfo("Asia/Kolkata"))
    result = schedule.next_after(after)
    assert result == utc(2026, 1, 1, 0, 0, 1)
    assert result.tzinfo is UTC
    assert result.microsecond == 0


def test_next_after_is_strict_and_zone_independent() -> None:
    schedule = Schedule.parse("0 * * * *")
    assert schedule.next_after(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)
    berlin = datetime(2026, 1, 1, 11, 59, 59, 999_999, tzinfo=ZoneInfo("Europe/Berlin"))
    assert schedule.next_after(berlin) == utc(2026, 1, 1, 11)


def test_slots_between_is_inclusive_and_limited() -> None:
    schedule = Schedule.parse("0 * * * *")
    start, end = utc(2026, 1, 1, 10), utc(2026, 1, 1, 12)
    assert schedule.slots_between(start, end, 10) == [start, utc(2026, 1, 1, 11), end]
    assert schedule.slots_between(start, end, 2) == [start, utc(2026, 1, 1, 11)]
    assert schedule.slots_between(start, end, 0) == []
    assert schedule.slots_between(end, start, 10) == []
    late = start + timedelta(microseconds=1)
    assert schedule.slots_between(late, end, 10) == [utc(2026, 1, 1, 11), end]
    assert schedule.slots_between(start, start, 10) == [start]
    with pytest.raises(ValueError, match="limit"):
        schedule.slots_between(start, end, -1)


@pytest.mark.parametrize(
    ("cron", "tz", "after", "samples", "expected"),
    [
        ("* * * * *", "UTC", utc(2026, 1, 1), 500, timedelta(minutes=1)),
        ("*/5 * * * * *", "UTC", utc(2026, 1, 1), 500, timedelta(seconds=5)),
        ("0 8 * * 1-5", "Europe/Berlin", utc(2026, 1, 1), 500, timedelta(days=1)),
        ("0 0 1 * *", "UTC", utc(2026, 1, 1), 24, timedelta(days=28)),
        ("0,30 9 * * *", "UTC", utc(2026, 1, 1), 2, timedelta(minutes=30)),
        # A DST gap shortens the hour around it: 01:00 LHST, 02:00 (gap -> 02:30), 03:00.
        ("0 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 12), 10, timedelta(minutes=30)),
    ],
)
def test_min_interval(cron: str, tz: str, after: datetime, samples: int, expected: timedelta):
    assert Schedule.parse(cron, tz).min_interval(after, samples) == expected


def test_calendar_edges_raise_value_error() -> None:
    schedule = Schedule.parse("* * * * *", "Pacific/Kiritimati")  # UTC+14
    with pytest.raises(ValueError, match="supported calendar"):
        schedule.next_after(datetime.max.replace(tzinfo=UTC))
    assert Schedule.parse("* * * * *").next_after(utc(9999, 12, 31, 23)) == utc(9999, 12, 31, 23, 1)


def test_argument_errors() -> None:
    schedule = Schedule.parse("* * * * *")
    naive = datetime(2026, 1, 1)
    for call in (
        lambda: schedule.next_after(naive),
        lambda: schedule.next_times(naive, 3),
        lambda: schedule.slots_between(naive, utc(2026, 1, 2), 3),
        lambda: schedule.slots_between(utc(2026, 1, 1), naive, 3),
        lambda: schedule.min_interval(naive),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()
    for count in (0, 1001):
        with pytest.raises(ValueError, match="count"):
            schedule.next_times(utc(2026, 1, 1), count)
    assert len(schedule.next_times(utc(2026, 1, 1), 1000)) == 1000
    with pytest.raises(ValueError, match="samples"):
        schedule.min_interval(utc(2026, 1, 1), 1)


# --- Properties -----------------------------------------------------------------------------

CRON_CHARS = "0123456789*/,-?@ LWH#JANMONFRISUNDECwedreboot\t"


@PROPERTY
@given(st.text(max_size=300))
def test_random_text_only_raises_schedule_error(text: str) -> None:
    try:
        Schedule.parse(text)
    except ScheduleError as exc:
        assert exc.field == "cron"


@PROPERTY
@given(st.lists(st.text(alphabet=CRON_CHARS, min_size=1, max_size=8), max_size=8))
def test_cron_like_text_only_raises_schedule_error(parts: list[str]) -> None:
    try:
        schedule = Schedule.parse(" ".join(parts), "Australia/Lord_Howe")
    except ScheduleError:
        return
    assert Schedule.parse(schedule.cron, "Australia/Lord_Howe") == schedule
    after = utc(2026, 10, 3, 15)
    assert schedule.next_after(after) > after


@PROPERTY
@given(st.text(max_size=80))
def test_random_timezone_only_raises_timezone_error(text: str) -> None:
    with contextlib.suppress(InvalidTimezoneError):
        parse_timezone(text)


PROPERTY_CRONS = [
    "* * * * *",
    "*/7 * * * *",
    "30 2 * * *",
    "15,45 1-3 * * *",
    "*/13 * * * * *",
    "0 */2 * * *",
    "59 1 * * *",
    "0 0 29 2 *",
    "0 9 * * MON-FRI",
]
PROPERTY_ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Asia/Kolkata",
]


@PROPERTY
@given(
    cron=st.sampled_from(PROPERTY_CRONS),
    tz=st.sampled_from(PROPERTY_ZONES),
    base=st.sampled_from([instant for _, instant in TRANSITIONS]),
    shift=st.integers(min_value=-3 * 3600, max_value=3 * 3600),
    micros=st.integers(min_value=0, max_value=999_999),
)
def test_next_times_chain_next_after(cron: str, tz: str, base: datetime, shift: int, micros: int):
    schedule = Schedule.parse(cron, tz)
    after = base + timedelta(seconds=shift, microseconds=micros)
    times = schedule.next_times(after, 12)
    previous = after
    for fire in times:
        assert fire > previous
        assert fire == schedule.next_after(previous)
        assert fire.tzinfo is UTC
        assert fire.microsecond == 0
        previous = fire
    assert schedule.slots_between(after + timedelta(microseconds=1), times[-1], 12) == times
