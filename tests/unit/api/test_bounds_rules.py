"""Bound and one-off rules without a database: order, instants in the past, no slot left,
naive date-times, `null` clearing bounds in a PATCH."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from api.auth import Principal
from api.errors import ApiError
from api.schemas.jobs import JobCreate, JobPatch
from api.validation import JobValidator, merge_patch, spec_from_body
from shared.jobs_repo import JobSpec
from shared.settings import Settings, load_settings
from tests.unit.api.echo import registry_with_echo

USER = Principal("alice")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    return load_settings({}, jwt_secret="s" * 32)


@pytest.fixture
def validator(settings: Settings) -> JobValidator:
    return JobValidator(settings, registry_with_echo())


def spec(settings: Settings, **fields: Any) -> JobSpec:
    body = {"name": "j", "type": "echo", "cron": "0 8 * * *", "payload": {}, **fields}
    return spec_from_body(JobCreate.model_validate(body), settings, by_admin=False)


def refused(validator: JobValidator, job: JobSpec, before: JobSpec | None = None) -> set[str]:
    with pytest.raises(ApiError) as error:
        validator.validate(job, USER, NOW, before=before)
    return {item.field for item in error.value.errors}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_good_bounds_pass_and_are_kept(settings: Settings, validator: JobValidator) -> None:
    start, end = NOW + timedelta(days=1), NOW + timedelta(days=8)
    job = spec(settings, startAt=iso(start), endAt=iso(end), maxRuns=5)
    valid = validator.validate(job, USER, NOW)
    assert (valid.start_at, valid.end_at, valid.max_runs) == (start, end, 5)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"startAt": iso(NOW + timedelta(days=3)), "endAt": iso(NOW + timedelta(days=2))}, "endAt"),
        ({"endAt": iso(NOW - timedelta(seconds=1))}, "endAt"),
        ({"cron": "0 8 1 1 *", "endAt": iso(NOW + timedelta(days=30))}, "endAt"),
        ({"cron": None, "runAt": iso(NOW - timedelta(minutes=1))}, "runAt"),
        ({"runAt": iso(NOW + timedelta(days=1))}, "runAt"),
        ({"cron": None, "runAt": iso(NOW + timedelta(days=1)), "maxRuns": 1}, "maxRuns"),
        ({"cron": None, "runAt": iso(NOW + timedelta(days=1)), "startAt": iso(NOW)}, "startAt"),
    ],
)
def test_bad_bounds_name_the_field(
    settings: Settings, validator: JobValidator, fields: dict[str, Any], field: str
) -> None:
    assert field in refused(validator, spec(settings, **fields))


@pytest.mark.parametrize("field", ["startAt", "endAt", "runAt"])
def test_a_date_time_without_offset_is_refused(settings: Settings, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        spec(settings, **{field: "2026-05-01T08:00:00"})
    assert error.value.errors()[0]["loc"] == (field,)
    assert spec(
        settings,
        **{"cron": None} if field == "runAt" else {},
        **{field: "2026-05-01T08:00:00+02:00"},
    )


@pytest.mark.parametrize("value", [0, -1, 1.5, "many"])
def test_max_runs_is_a_positive_integer(settings: Settings, value: object) -> None:
    with pytest.raises(ValidationError):
        spec(settings, maxRuns=value)


def test_an_instant_already_stored_may_lie_in_the_past(
    settings: Settings, validator: JobValidator
) -> None:
    passed = spec(settings, cron=None, runAt=iso(NOW + timedelta(days=1)))
    later = NOW + timedelta(days=2)
    # The same job read two days on: renaming it is fine, setting a past runAt is not.
    assert validator.validate(passed.replace(name="renamed"), USER, later, before=passed)
    moved = passed.replace(run_at=NOW + timedelta(hours=30))
    with pytest.raises(ApiError) as error:
        validator.validate(moved, USER, later, before=passed)
    assert {item.field for item in error.value.errors} == {"runAt"}


def test_patch_null_clears_bounds_only(settings: Settings) -> None:
    job = spec(settings, endAt=iso(NOW + timedelta(days=3)), maxRuns=2)
    patch = JobPatch.model_validate({"endAt": None, "maxRuns": None})
    cleared = merge_patch(job, patch.changes(), by_admin=False)
    assert (cleared.end_at, cleared.max_runs) == (None, None)
    with pytest.raises(ValidationError):
        JobPatch.model_validate({"runAt": None})


def test_sending_run_at_in_a_patch_switches_the_kind(settings: Settings) -> None:
    job = spec(settings)
    at = NOW + timedelta(days=1)
    patch = JobPatch.model_validate({"runAt": iso(at)})
    switched = merge_patch(job, patch.changes(), by_admin=False)
    assert (switched.cron, switched.every, switched.run_at) == (None, None, at)
