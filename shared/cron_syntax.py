"""Cron expression syntax: field-precise validation and expansion to explicit value lists."""

import re
from dataclasses import dataclass
from typing import NamedTuple

MAX_CRON_LENGTH = 200

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELD_COUNT_HINT = "expected 5 fields (or 6 with a leading seconds field)"
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_LETTERS = re.compile(r"[A-Za-z]+", re.ASCII)
# `FRI#2`, `5#2`: the nth (1..5) such weekday of the month.
_NTH_WEEKDAY = re.compile(r"([0-9]+|[A-Za-z]+)#([0-9]+)", re.ASCII)
_LAST_DAY = "L"
# Longest month per month number; February counts its leap day so Feb 29 schedules are valid.
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class CronSyntaxError(ValueError):
    """A cron expression is malformed; the message names the faulty field."""


class _Field(NamedTuple):
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DOW = _Field("day-of-week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
_FIVE = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)


@dataclass(frozen=True)
class ParsedCron:
    """A validated expression: normalised text and the explicit form handed to croniter."""

    text: str
    croniter_expr: str
    has_seconds: bool


def parse_cron(cron: str) -> ParsedCron:
    """Validate and normalise an expression; raise CronSyntaxError with a user-facing message."""
    if not isinstance(cron, str):
        raise CronSyntaxError("cron expression must be a string")
    if len(cron) > MAX_CRON_LENGTH:
        raise CronSyntaxError(f"cron expression is too long (max {MAX_CRON_LENGTH} characters)")
    parts = cron.split()
    if not parts:
        raise CronSyntaxError("cron expression must not be empty")
    if parts[0].startswith("@"):
        parts = _expand_macro(parts)
    if len(parts) == 7:
        raise CronSyntaxError(f"{_FIELD_COUNT_HINT}, got 7: a year field is not supported")
    if len(parts) not in (5, 6):
        raise CronSyntaxError(f"{_FIELD_COUNT_HINT}, got {len(parts)}")
    has_seconds = len(parts) == 6
    fields = (_SECOND, *_FIVE) if has_seconds else _FIVE
    texts: list[str] = []
    values: list[frozenset[int] | None] = []
    specials: list[tuple[str, ...]] = []
    for field, part in zip(fields, parts, strict=True):
        text, allowed, special = _parse_field(field, part)
        texts.append(text)
        values.append(allowed)
        specials.append(special)
    if specials[-1] and values[-3] is not None:
        raise CronSyntaxError(
            "day-of-week field: '#' cannot be combined with a day-of-month; use '*' there"
        )
    if not specials[-3]:  # `L` exists in every month
        values[-3] = _day_values(*values[-3:])
    explicit = " ".join(_explicit(v, x) for v, x in zip(values, specials, strict=True))
    return ParsedCron(" ".join(texts), explicit, has_seconds)


def _expand_macro(parts: list[str]) -> list[str]:
    macro = parts[0].lower()
    if len(parts) > 1:
        raise CronSyntaxError(f"a macro like {parts[0]!r} cannot be combined with other fields")
    if macro == "@reboot":
        raise CronSyntaxError("'@reboot' is not supported: jobs run on a schedule, not at startup")
    if macro not in _MACROS:
        known = ", ".join(_MACROS)
        raise CronSyntaxError(f"unknown macro {parts[0]!r} (use one of {known})")
    return _MACROS[macro].split()


def _parse_field(field: _Field, text: str) -> tuple[str, frozenset[int] | None, tuple[str, ...]]:
    """The normalised field text, its values (None: an unrestricted `*`) and its special items
    (`L` in day-of-month, `n#k` in day-of-week) in the form croniter reads."""
    if text in ("*", "?"):
        if text == "?" and field not in (_DOM, _DOW):
            raise CronSyntaxError(
                f"{field.label} field: '?' is only allowed in day-of-month and day-of-week"
            )
        return "*", None, ()
    values: set[int] = set()
    specials: list[str] = []
    for item in text.split(","):
        if not item:
            raise CronSyntaxError(f"{field.label} field: empty list item in {text!r}")
        special = _parse_special(field, item)
        if special:
            specials.append(special)
        else:
            values |= _parse_item(field, item)
    if field is _DOW:
        values = {value % 7 for value in values}  # 7 is Sunday as well
        if specials and values:
            raise CronSyntaxError(
                "day-of-week field: an nth weekday ('#') cannot be listed with plain weekdays"
            )
    return text.upper(), frozenset(values), tuple(dict.fromkeys(specials))


def _parse_special(field: _Field, item: str) -> str | None:
    """`L` (last day of the month) or `weekday#n` (nth weekday of the month); None otherwise."""
    if item.upper() == _LAST_DAY:
        if field is not _DOM:
            raise CronSyntaxError(
                f"{field.label} field: 'L' (last day of the month) belongs in day-of-month"
            )
        return _LAST_DAY
    nth = _NTH_WEEKDAY.fullmatch(item)
    if "#" not in item:
        return None
    if field is not _DOW or nth is None:
        raise CronSyntaxError(
            f"{field.label} field: {item!r} is not valid; '#' is written weekday#n in "
            "day-of-week, e.g. FRI#2 for the second Friday of the month"
        )
    weekday = _parse_value(field, nth.group(1), item) % 7
    occurrence = int(nth.group(2))
    if not 1 <= occurrence <= 5:
        raise CronSyntaxError(f"day-of-week field: {item!r}: n in weekday#n must be 1-5")
    return f"{weekday}#{occurrence}"


def _parse_item(field: _Field, item: str) -> set[int]:
    base, slash, step_text = item.partition("/")
    step = _parse_step(field, step_text) if slash else 1
    if base == "*":
        start, stop = field.low, field.high
    else:
        first, dash, last = base.partition("-")
        start = _parse_value(field, first, item)
        # "5/15" means "from 5 to the end of the field, every 15" (Vixie cron)
        stop = _parse_value(field, last, item) if dash else (field.high if slash else start)
        if start > stop:
            raise CronSyntaxError(
                f"{field.label} field: range {base!r} is reversed (start must not exceed end)"
            )
    return set(range(start, stop + 1, step))


def _parse_value(field: _Field, token: str, item: str) -> int:
    if _DIGITS.fullmatch(token):
        number = int(token)
        if not field.low <= number <= field.high:
            raise CronSyntaxError(
                f"{field.label} field: {number} is out of range {field.low}-{field.high}"
            )
        return number
    if _LETTERS.fullmatch(token) and token.upper() in field.names:
        return field.low + field.names.index(token.upper())
    raise CronSyntaxError(f"{field.label} field: {token or item!r} is not a valid value")


def _parse_step(field: _Field, text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise CronSyntaxError(f"{field.label} field: step {text!r} is not a number")
    step = int(text)
    if not 1 <= step <= field.high:
        raise CronSyntaxError(f"{field.label} field: step {step} is out of range 1-{field.high}")
    return step


def _day_values(
    days: frozenset[int] | None, months: frozenset[int] | None, weekdays: frozenset[int] | None
) -> frozenset[int] | None:
    """The day-of-month values croniter should see; raise if no day can ever match."""
    if days is None:
        return None
    longest = max(_MONTH_DAYS[month - 1] for month in (months or range(1, 13)))
    if min(days) <= longest:
        return days
    if weekdays is None:
        raise CronSyntaxError(
            "never fires: no month in the month field has the days in the day-of-month field"
        )
    # Both day fields are restricted, so they combine with OR and the impossible days
    # drop out; croniter gives up on "0 0 31 2 MON" instead of firing on Mondays.
    return None


def _explicit(values: frozenset[int] | None, specials: tuple[str, ...] = ()) -> str:
    # croniter misreads some valid forms ("12/1" as every month, "5-5" as the whole field),
    # so it only ever sees `*`, a plain list of numbers, `L` or `n#k`.
    if values is None:
        return "*"
    return ",".join([*(str(value) for value in sorted(values)), *specials])
