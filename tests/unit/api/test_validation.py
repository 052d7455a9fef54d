"""Whole-job validation without a database: types, roles, schedules, payload trees, patches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.auth import Principal
from api.errors import ApiError
from api.schemas.jobs import JobCreate, JobPatch
from api.validation import JobValidator, check_json_tree, merge_patch, spec_from_body
from shared.jobs_repo import JobSpec
from shared.settings import Settings, load_settings
from tests.unit.api.echo import registry_with_echo

USER = Principal("alice")
ADMIN = Principal("root", frozenset({"admin"}))
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    return load_settings({}, jwt_secret="s" * 32, max_timeout_seconds=600)


@pytest.fixture
def validator(settings: Settings) -> JobValidator:
    return JobValidator(settings, registry_with_echo())


def spec(settings: Settings, **fields: Any) -> JobSpec:
    body = {"name": "j", "type": "echo", "cron": "0 8 * * *", "payload": {}, **fields}
    return spec_from_body(JobCreate.model_validate(body), settings, by_admin=False)


def fields_of(error: ApiError) -> set[str]:
    return {item.field for item in error.errors}


def test_valid_job_is_normalised(validator: JobValidator, settings: Settings) -> None:
    result = validator.validate(
        spec(settings, cron=" 0  8 * *  *", timezone="Europe/Berlin"), USER, NOW
    )
    assert result.cron == "0 8 * * *"
    assert result.timezone == "Europe/Berlin"
    assert result.options.timeout_seconds == settings.default_timeout_seconds


def test_all_problems_are_reported_together(validator: JobValidator, settings: Settings) -> None:
    bad = spec(
        settings, cron="0 8 * *", timezone="Nowhere", payload={"count": 99}, timeoutSeconds=601
    )
    with pytest.raises(ApiError) as raised:
        validator.validate(bad, USER, NOW)
    assert raised.value.status == 422
    assert fields_of(raised.value) == {"cron", "timezone", "payload.count", "timeoutSeconds"}


def test_unknown_type_lists_the_types_the_caller_may_use(
    validator: JobValidator, settings: Settings
) -> None:
    with pytest.raises(ApiError) as user_error:
        validator.validate(spec(settings, type="shell"), USER, NOW)
    with pytest.raises(ApiError) as admin_error:
        validator.validate(spec(settings, type="shell"), ADMIN, NOW)
    assert "noop" not in user_error.value.errors[0].message
    assert "echo" in user_error.value.errors[0].message
    assert "noop" in admin_error.value.errors[0].message


def test_admin_only_type(validator: JobValidator, settings: Settings) -> None:
    with pytest.raises(ApiError) as raised:
        validator.validate(spec(settings, type="noop"), USER, NOW)
    assert raised.value.status == 403
    assert validator.validate(spec(settings, type="noop"), ADMIN, NOW).type == "noop"


def test_payload_rules_see_the_role(validator: JobValidator, settings: Settings) -> None:
    forbidden = spec(settings, payload={"message": "forbidden"})
    with pytest.raises(ApiError) as raised:
        validator.validate(forbidden, USER, NOW)
    assert fields_of(raised.value) == {"payload.message"}
    assert validator.validate(forbidden, ADMIN, NOW).payload == {"message": "forbidden"}


@pytest.mark.parametrize("url", ["/../admin", "/hooks/%2E%2e/admin", "/./x"])
def test_relative_url_with_dot_segments_is_refused_as_payload_url(
    validator: JobValidator, settings: Settings, url: str
) -> None:
    bad = spec(settings, type="httpRequest", payload={"url": url})
    with pytest.raises(ApiError) as raised:
        validator.validate(bad, USER, NOW)
    assert fields_of(raised.value) == {"payload.url"}
    assert "'..' segments" in raised.value.errors[0].message


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"a": {"b": [1, {"$gt": 1}]}}, {"payload.a.b[1].'$gt'"}),
        ({"": 1}, {"payload.''"}),
        ({"x": [2**63]}, {"payload.x[0]"}),
        ({"x": -(2**63) - 1}, {"payload.x"}),
        ({"x": "\ud800"}, {"payload.x"}),
        ({"ok": [2**63 - 1, -(2**63), "text", 1.5, None, True]}, set()),
    ],
)
def test_json_tree(payload: dict[str, Any], fields: set[str]) -> None:
    assert {error.field for error in check_json_tree(payload, 8)} == fields


def test_json_tree_depth() -> None:
    assert list(check_json_tree({"a": {"b": 1}}, 2)) == []
    errors = list(check_json_tree({"a": {"b": {"c": 1}}}, 2))
    assert [(error.field, error.message) for error in errors] == [
        ("payload", "nested 3 levels deep; at most 2 allowed")
    ]


def test_merge_patch_replaces_top_level_fields(settings: Settings) -> None:
    base = spec(settings, retry={"maxAttempts": 5, "backoffSeconds": 1}, payload={"message": "a"})
    patch = JobPatch.model_validate(
        {"retry": {"maxAttempts": 2}, "payload": {"count": 3}, "enabled": False}
    )
    merged = merge_patch(base, patch.changes(), by_admin=False)
    assert merged.options.retry.max_attempts == 2
    assert merged.options.retry.backoff_seconds == 10  # retry is replaced as a whole
    assert merged.payload == {"count": 3}
    assert merged.enabled is False
    assert merged.name == base.name


@pytest.mark.parametrize(
    ("patch", "by_admin", "expected"),
    [
        ({"payload": {"message": "b"}}, True, True),
        ({"payload": {"message": "b"}}, False, False),
        ({"type": "echo"}, False, False),
        ({"name": "other", "enabled": False}, False, True),  # payload not judged again: kept
    ],
)
def test_merge_patch_records_who_validated_the_payload(
    settings: Settings, patch: dict[str, Any], by_admin: bool, expected: bool
) -> None:
    base = spec_from_body(
        JobCreate.model_validate({"name": "j", "type": "echo", "cron": "0 8 * * *"}),
        settings,
        by_admin=True,
    )
    assert base.payload_by_admin is True
    changes = JobPatch.model_validate(patch).changes()
    assert merge_patch(base, changes, by_admin=by_admin).payload_by_admin is expected


def test_min_interval_is_only_sampled_when_it_can_matter(
    validator: JobValidator, settings: Settings
) -> None:
    errors: list[Any] = []
    assert validator.check_schedule("*/1 * * * *", "UTC", USER, errors, NOW) is not None
    assert validator.check_schedule("30 * * * * *", "UTC", USER, errors, NOW) is not None
    assert errors == []
    assert validator.check_schedule("0,30 * * * * *", "UTC", USER, errors, NOW) is not None
    assert [error.field for error in errors] == ["cron"]


def test_a_dst_gap_far_ahead_is_seen_by_the_minimum_interval(validator: JobValidator) -> None:
    # Every hour at :59:59 past 1 and 2 o'clock; on 2027-03-28 Berlin skips 02:00-03:00, so the
    # 02:59:59 fire lands one second after the 01:59:59 one. Judged on 2026-04-01 (361 days
    # before), a check sampling the next 500 fires never got there.
    errors: list[Any] = []
    april = datetime(2026, 4, 1, tzinfo=UTC)
    assert validator.check_schedule("59 59 1,2 * * *", "Europe/Berlin", USER, errors, april)
    assert [(error.field, error.message.split(";")[0]) for error in errors] == [
        ("cron", "fires every 1 s at times")
    ]
    assert validator.check_schedule("59 59 1,2 * * *", "UTC", USER, [], april) is not None


def interval(settings: Settings, **fields: Any) -> JobSpec:
    body = {"name": "j", "type": "echo", "every": "PT90M", "payload": {}, **fields}
    return spec_from_body(JobCreate.model_validate(body), settings, by_admin=False)


def test_an_interval_job_is_normalised(validator: JobValidator, settings: Settings) -> None:
    result = validator.validate(interval(settings, every=" pt36h "), USER, NOW)
    assert (result.cron, result.every) == (None, "PT36H")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"every": None}, "cron"),  # neither kind
        ({"cron": "0 8 * * *"}, "every"),  # both kinds
        ({"every": "P1M"}, "every"),  # months vary in length
        ({"every": "PT0M"}, "every"),
        ({"every": "-PT5M"}, "every"),
        ({"every": "PT1.5H"}, "every"),
        ({"every": "PT30S"}, "every"),  # seconds: admins only
        ({"every": "PT90S"}, "every"),
    ],
)
def test_a_job_needs_exactly_one_valid_schedule(
    validator: JobValidator, settings: Settings, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiError) as raised:
        validator.validate(interval(settings, **fields), USER, NOW)
    assert raised.value.status == 422
    assert fields_of(raised.value) == {field}


def test_the_minimum_interval_applies_to_intervals(settings: Settings) -> None:
    strict = JobValidator(
        settings.model_copy(update={"min_interval_seconds": 300}), registry_with_echo()
    )
    with pytest.raises(ApiError) as raised:
        strict.validate(interval(settings, every="PT4M"), USER, NOW)
    assert fields_of(raised.value) == {"every"}
    assert "at least 300 s" in raised.value.errors[0].message
    assert strict.validate(interval(settings, every="PT5M"), USER, NOW).every == "PT5M"
    assert strict.validate(interval(settings, every="PT1S"), ADMIN, NOW).every == "PT1S"


def test_a_patch_of_one_kind_replaces_the_other(settings: Settings) -> None:
    cron_job = spec(settings)
    to_interval = merge_patch(
        cron_job, JobPatch.model_validate({"every": "PT2H"}).changes(), by_admin=False
    )
    assert (to_interval.cron, to_interval.every) == (None, "PT2H")
    back = merge_patch(
        to_interval, JobPatch.model_validate({"cron": "0 9 * * *"}).changes(), by_admin=False
    )
    assert (back.cron, back.every) == ("0 9 * * *", None)
    both = merge_patch(
        cron_job,
        JobPatch.model_validate({"every": "PT2H", "cron": "0 9 * * *"}).changes(),
        by_admin=False,
    )
    assert (both.cron, both.every) == ("0 9 * * *", "PT2H")  # refused by validate


@pytest.mark.parametrize(
    ("schedule", "jitter", "valid"),
    [
        ({"cron": "*/10 * * * *"}, 300, True),  # half of ten minutes
        ({"cron": "*/10 * * * *"}, 301, False),
        ({"cron": "0 8 * * *"}, 3600, True),  # daily: capped by the 3600 s maximum only
        ({"cron": "0,1 8 * * *"}, 31, False),  # the shortest gap (08:00 -> 08:01) counts
        ({"every": "PT2M"}, 60, True),
        ({"every": "PT2M"}, 61, False),
        ({"cron": "* * * * *"}, 0, True),
    ],
)
def test_jitter_is_at_most_half_the_shortest_interval(
    validator: JobValidator, settings: Settings, schedule: dict[str, str], jitter: int, valid: bool
) -> None:
    body = spec(settings, jitterSeconds=jitter, **schedule).replace(
        cron=schedule.get("cron"), every=schedule.get("every")
    )
    if valid:
        assert validator.validate(body, USER, NOW).options.jitter_seconds == jitter
        return
    with pytest.raises(ApiError) as raised:
        validator.validate(body, USER, NOW)
    assert fields_of(raised.value) == {"jitterSeconds"}
    assert "half the schedule's shortest interval" in raised.value.errors[0].message


def test_jitter_outside_its_range_is_refused_by_the_body() -> None:
    for jitter in (-1, 3601):
        with pytest.raises(ValueError, match="jitterSeconds"):
            JobCreate.model_validate(
                {"name": "j", "type": "echo", "cron": "0 8 * * *", "jitterSeconds": jitter}
            )


def test_a_patch_of_the_schedule_checks_the_jitter_it_keeps(
    validator: JobValidator, settings: Settings
) -> None:
    base = validator.validate(spec(settings, cron="0 * * * *", jitterSeconds=600), USER, NOW)
    merged = merge_patch(base, JobPatch(cron="*/10 * * * *").changes(), by_admin=False)
    with pytest.raises(ApiError) as raised:
        validator.validate(merged, USER, NOW)
    assert fields_of(raised.value) == {"jitterSeconds"}
