"""purgeSessions: payload validation and its admin-only flag."""

from __future__ import annotations

from typing import Any

import pytest

from shared.job_types.purge_sessions import JOB_TYPE, PurgeSessionsPayload
from tests.unit.job_types.fields import payload_errors


def test_valid_payload() -> None:
    assert PurgeSessionsPayload.model_validate({"inactiveDays": 30}).inactive_days == 30
    assert PurgeSessionsPayload.model_validate({"inactiveDays": 1}).inactive_days == 1
    assert PurgeSessionsPayload.model_validate({"inactiveDays": 3650}).inactive_days == 3650


def test_it_is_admin_only() -> None:
    assert JOB_TYPE.admin_only is True


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({}, "inactiveDays", "Field required"),
        ({"inactiveDays": 0}, "inactiveDays", "greater than or equal to 1"),
        ({"inactiveDays": 3651}, "inactiveDays", "less than or equal to 3650"),
        ({"inactiveDays": "30"}, "inactiveDays", "valid integer"),
        ({"inactiveDays": 1.5}, "inactiveDays", "valid integer"),
        ({"inactiveDays": True}, "inactiveDays", "valid integer"),
        ({"inactiveDays": 30, "collection": "cron_jobs"}, "collection", "not permitted"),
    ],
)
def test_each_invalid_field_is_named(payload: dict[str, Any], field: str, message: str) -> None:
    errors = payload_errors(PurgeSessionsPayload, payload)
    assert field in errors, errors
    assert message in errors[field]
