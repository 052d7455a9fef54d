"""Whole-job validation: type and role, schedule and minimum interval, payload, limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake

from api.auth import Principal
from api.bounds_rules import check_bounds
from api.errors import ApiError, field_error, invalid, plain_message
from api.notify_rules import check_webhook
from api.schemas.common import FieldError
from api.schemas.jobs import JobReplace
from shared.interval import IntervalSchedule, anchor_of
from shared.jitter import max_jitter_seconds
from shared.job_schedule import SCHEDULE_KINDS, SlotSchedule, schedule_of
from shared.job_types.limits import json_depth
from shared.jobs_repo import JobSpec
from shared.model import JobOptions, RetryPolicy
from shared.one_off import OneOffSchedule
from shared.registry import JobTypeRegistry, PayloadContext, PayloadRuleError
from shared.schedule import Schedule, ScheduleError, parse_timezone
from shared.schedule_gaps import shortest_gap
from shared.settings import Settings

# A 5-field cron fires on whole wall-clock minutes and offsets change by whole minutes, so
# its gaps are at least this long.
MINUTE_SECONDS: Final = 60
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# PATCH fields after which the payload is judged by the caller's rules, not the previous ones.
PAYLOAD_RULE_FIELDS: Final = frozenset({"payload", "type"})
# The schedule kinds by Python name (a PATCH's changes are keyed so).
SCHEDULE_KINDS_SET: Final = frozenset(to_snake(kind) for kind in SCHEDULE_KINDS)


def spec_from_body(body: JobReplace, settings: Settings, *, by_admin: bool) -> JobSpec:
    """The unvalidated job a create/replace body describes (defaults filled in).

    `by_admin`: the caller is an admin, so the payload will be validated under admin rules.
    """
    options = JobOptions(
        retry=RetryPolicy.model_validate(body.retry.model_dump()),
        timeout_seconds=body.timeout_seconds or settings.default_timeout_seconds,
        overlap_policy=body.overlap_policy,
        misfire_policy=body.misfire_policy,
        misfire_grace_seconds=body.misfire_grace_seconds,
        notify=body.notify,
        pause_after_failures=(
            settings.default_pause_after_failures
            if body.pause_after_failures is None
            else body.pause_after_failures
        ),
        jitter_seconds=body.jitter_seconds,
    )
    return JobSpec(
        name=body.name,
        type=body.type,
        cron=body.cron,
        every=body.every,
        run_at=body.run_at,
        start_at=body.start_at,
        end_at=body.end_at,
        max_runs=body.max_runs,
        timezone=body.timezone,
        payload=body.payload,
        enabled=body.enabled,
        options=options,
        payload_by_admin=by_admin,
    )


def merge_patch(spec: JobSpec, changes: dict[str, Any], *, by_admin: bool) -> JobSpec:
    """`spec` with the PATCH fields applied (top-level replacement, `retry` as a whole).

    A PATCH of `payload` or `type` has the payload validated anew, under the caller's rules
    (`by_admin`); any other PATCH keeps the rules it was last validated under.
    """
    option_names = set(JobOptions.model_fields)
    options = spec.options.model_dump()
    sent_kinds = SCHEDULE_KINDS_SET & changes.keys()
    if sent_kinds:
        # Sending one schedule kind switches to it; sending two is refused by `validate`.
        changes = {**dict.fromkeys(SCHEDULE_KINDS_SET - sent_kinds), **changes}
    for name, value in changes.items():
        if name in option_names:
            options[name] = value.model_dump() if isinstance(value, BaseModel) else value
    job_fields = {name: value for name, value in changes.items() if name not in option_names}
    if PAYLOAD_RULE_FIELDS & changes.keys():
        job_fields["payload_by_admin"] = by_admin
    return spec.replace(**job_fields, options=JobOptions.model_validate(options))


class JobValidator:
    """Checks a job against the registry, the schedule rules and the limits, for one caller."""

    def __init__(self, settings: Settings, registry: JobTypeRegistry) -> None:
        self.settings = settings
        self.registry = registry

    def validate(
        self,
        spec: JobSpec,
        caller: Principal,
        now: datetime | None = None,
        before: JobSpec | None = None,
    ) -> JobSpec:
        """The normalised spec; ApiError 403 (admin-only type) or 422 naming every bad field.

        `before`: the stored job of an edit (instants it already had may lie in the past)."""
        now = now or datetime.now(UTC)
        errors: list[FieldError] = []
        type_known = self._check_type(spec.type, caller, errors)
        schedule = self.check_schedule(
            spec.cron,
            spec.timezone,
            caller,
            errors,
            now,
            every=spec.every,
            anchor_at=spec.start_at,
            run_at=spec.run_at,
        )
        errors.extend(check_bounds(spec, schedule, before, now))
        if spec.options.timeout_seconds > self.settings.max_timeout_seconds:
            errors.append(
                field_error(
                    "timeoutSeconds",
                    f"must be at most {self.settings.max_timeout_seconds} seconds",
                )
            )
        errors.extend(check_webhook(spec.options.notify, self.settings))
        if schedule is not None:
            errors.extend(jitter_errors(spec.options.jitter_seconds, schedule, now))
        payload_errors = list(check_json_tree(spec.payload, self.settings.max_payload_depth))
        errors.extend(payload_errors)
        if type_known and not payload_errors:
            errors.extend(self._check_payload(spec, caller))
        if errors:
            raise invalid(errors)
        assert schedule is not None  # no errors means the schedule parsed
        zone = parse_timezone(spec.timezone).key
        if isinstance(schedule, IntervalSchedule):
            return spec.replace(every=schedule.every, timezone=zone)
        if isinstance(schedule, OneOffSchedule):
            return spec.replace(run_at=schedule.at, timezone=zone)
        assert isinstance(schedule, Schedule)
        return spec.replace(cron=schedule.cron, timezone=zone)

    def _check_type(self, name: str, caller: Principal, errors: list[FieldError]) -> bool:
        if name not in self.registry:
            usable = [t.name for t in self.registry if caller.is_admin or not t.admin_only]
            message = f"unknown job type {name!r}; allowed: {', '.join(sorted(usable))}"
            errors.append(field_error("type", message))
            return False
        if self.registry.get(name).admin_only and not caller.is_admin:
            raise ApiError(HTTPStatus.FORBIDDEN, f"job type {name!r} is reserved for admins")
        return True

    def check_schedule(
        self,
        cron: str | None,
        timezone: str,
        caller: Principal,
        errors: list[FieldError],
        now: datetime | None = None,
        *,
        every: str | None = None,
        anchor_at: datetime | None = None,
        run_at: datetime | None = None,
    ) -> SlotSchedule | None:
        """The parsed schedule (exactly one of `cron` / `every` / `run_at`, without bounds), or
        None with the errors of the schedule field and the time zone appended. `anchor_at`: an
        interval's grid origin (default: now)."""
        now = now or datetime.now(UTC)
        zone_known = True
        try:
            parse_timezone(timezone)
        except ScheduleError as error:
            errors.append(field_error("timezone", error.message))
            zone_known = False
        try:  # with a bad zone, still report what is wrong with the schedule itself
            schedule = schedule_of(
                cron=cron,
                every=every,
                anchor_at=anchor_of(anchor_at or now),
                timezone=timezone if zone_known else "UTC",
                run_at=run_at,
            )
        except ScheduleError as error:
            errors.append(field_error(error.field or "cron", error.message))
            return None
        if not zone_known:
            return None
        kind = "every" if every is not None else "cron"
        if not caller.is_admin and run_at is None:
            errors.extend(self._below_minimum(schedule, kind, now))
        return schedule

    def _below_minimum(self, schedule: SlotSchedule, kind: str, now: datetime) -> list[FieldError]:
        """Non-admins: the minimum interval, and whole minutes for intervals."""
        minimum = self.settings.min_interval_seconds
        if kind == "every" and schedule.has_seconds:
            message = "seconds are for admins: use a whole number of minutes (e.g. 'PT2M')"
            return [field_error(kind, message)]
        # A 5-field cron cannot fire more often than once a minute: skip the sampling then.
        if not schedule.has_seconds and minimum <= MINUTE_SECONDS:
            return []
        try:  # cron: exact, the wall-clock pattern and every offset transition (schedule_gaps)
            if isinstance(schedule, Schedule):
                shortest = shortest_gap(schedule, now)
            else:
                shortest = schedule.min_interval(now)
        except ValueError:  # fewer than two fire times left in the calendar
            return []
        if shortest.total_seconds() >= minimum:
            return []
        if kind == "every":
            message = f"must be at least {minimum} s (the minimum interval between runs)"
        else:
            message = (
                f"fires every {shortest.total_seconds():g} s at times; the minimum "
                f"interval between runs is {minimum} s"
            )
        return [field_error(kind, message)]

    def _check_payload(self, spec: JobSpec, caller: Principal) -> list[FieldError]:
        context = PayloadContext(self.settings, caller.is_admin)
        try:
            self.registry.validate_payload(spec.type, spec.payload, context)
        except ValidationError as error:
            return [
                field_error(_payload_path(item["loc"]), plain_message(item["msg"]))
                for item in error.errors()
            ]
        except PayloadRuleError as error:
            return [field_error(_payload_path((error.field,)), error.message)]
        return []


def jitter_errors(
    jitter_seconds: int, schedule: SlotSchedule, now: datetime | None = None
) -> list[FieldError]:
    """`jitterSeconds` may be at most half the schedule's shortest interval (and 3600)."""
    if jitter_seconds <= 0:
        return []
    try:
        shortest = schedule.min_interval(now or datetime.now(UTC))
    except ValueError:  # fewer than two fire times left: no interval to stay inside
        return []
    allowed = max_jitter_seconds(shortest)
    if jitter_seconds <= allowed:
        return []
    message = (
        f"must be at most {allowed} s: half the schedule's shortest interval "
        f"({shortest.total_seconds():g} s)"
    )
    return [field_error("jitterSeconds", message)]


def _payload_path(location: tuple[int | str, ...] | list[Any]) -> str:
    path = "payload"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def check_json_tree(payload: Any, max_depth: int) -> Iterator[FieldError]:
    """Depth, key names and values MongoDB can store as given (no `$`/`.`/NUL keys, int64)."""
    depth = json_depth(payload)
    if depth > max_depth:
        yield field_error("payload", f"nested {depth} levels deep; at most {max_depth} allowed")
        return
    pending: list[tuple[str, Any]] = [("payload", payload)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if not _storable_key(key):
                    yield field_error(
                        f"{path}.{key!r}",
                        "keys must be non-empty text without NUL or '.', not starting with '$'",
                    )
                else:
                    pending.append((f"{path}.{key}", child))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", child) for index, child in enumerate(value))
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            yield field_error(path, "integer out of range (64-bit)")
        elif isinstance(value, str) and not _encodable(value):
            yield field_error(path, "text is not valid Unicode")


def _storable_key(key: Any) -> bool:
    return (
        isinstance(key, str)
        and bool(key)
        and _encodable(key)
        and not key.startswith("$")
        and "." not in key
        and "\x00" not in key
    )


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
