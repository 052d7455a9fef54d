"""The stored job and run documents: camelCase aliases, defaults, slot keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId
from pydantic import ValidationError

from shared.model import (
    JobDocument,
    JobOptions,
    MisfirePolicy,
    OverlapPolicy,
    idempotency_key,
    manual_slot_key,
    slot_key,
)

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def _stored(**extra: object) -> dict[str, object]:
    return {
        "_id": ObjectId(),
        "ownerId": "alice",
        "name": "digest",
        "type": "noop",
        "cron": "0 8 * * 1-5",
        "timezone": "Europe/Berlin",
        "createdAt": NOW,
        "updatedAt": NOW,
        **extra,
    }


def test_job_document_parses_camel_case_and_fills_defaults() -> None:
    job = JobDocument.from_mongo(_stored(nextRunAt=NOW, retry={"maxAttempts": 5}))
    assert job.owner_id == "alice"
    assert job.next_run_at == NOW
    assert job.retry.max_attempts == 5
    assert job.retry.backoff_seconds == 10
    assert job.overlap_policy is OverlapPolicy.SKIP
    assert job.misfire_policy is MisfirePolicy.RUN_ONCE
    assert job.active_run_ids == []
    assert job.options() == JobOptions.model_validate({"retry": {"maxAttempts": 5}})


def test_job_options_reject_unknown_fields_and_bad_ranges() -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"retries": 3})
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"retry": {"maxAttempts": 0}})
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"misfirePolicy": "catchUpAll"})


def test_slot_keys() -> None:
    run_id = ObjectId("65f000000000000000000001")
    assert slot_key(datetime(2026, 3, 8, 7, 0, 5, 123, tzinfo=UTC)) == "2026-03-08T07:00:05Z"
    assert manual_slot_key(run_id) == "manual:65f000000000000000000001"
    assert idempotency_key(run_id, "2026-03-08T07:00:05Z") == (
        "65f000000000000000000001:2026-03-08T07:00:05Z"
    )
