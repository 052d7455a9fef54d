"""The built-in whitelist: every type is registered, has a schema and a worker handler."""

from __future__ import annotations

from typing import Any

import pytest

from shared.registry import build_registry
from shared.settings import load_settings
from worker.handlers import HANDLERS

TYPES = {"noop", "sendEmail", "purgeSessions", "generateReport", "httpRequest"}


def test_every_builtin_type_is_offered_with_a_handler() -> None:
    registry = build_registry(load_settings({}))
    assert set(registry.names()) == TYPES
    assert set(HANDLERS) == TYPES


def test_only_maintenance_types_are_admin_only() -> None:
    registry = build_registry(load_settings({}))
    assert {t.name for t in registry if t.admin_only} == {"noop", "purgeSessions"}


def test_schemas_use_the_client_field_names_and_forbid_extras() -> None:
    registry = build_registry(load_settings({}))
    schemas = {t.name: t.json_schema() for t in registry}
    assert set(schemas["sendEmail"]["properties"]) == {"to", "subject", "template", "params"}
    assert set(schemas["purgeSessions"]["properties"]) == {"inactiveDays"}
    assert set(schemas["generateReport"]["properties"]) == {"type", "period"}
    assert set(schemas["httpRequest"]["properties"]) == {
        "url",
        "method",
        "headers",
        "body",
        "timeoutSeconds",
    }
    assert all(schema["additionalProperties"] is False for schema in schemas.values())


def test_types_can_be_disabled() -> None:
    registry = build_registry(load_settings({}, disabled_types="httpRequest,sendEmail"))
    assert "httpRequest" not in registry and "sendEmail" not in registry
    assert "generateReport" in registry


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("sendEmail", {"to": "a@example.com", "subject": "S", "template": "digest"}),
        ("purgeSessions", {"inactiveDays": 90}),
        ("generateReport", {"type": "jobRuns", "period": "monthly"}),
        ("httpRequest", {"url": "/hook", "headers": {"X-A": "1"}, "body": {"k": [1]}}),
    ],
)
def test_a_stored_payload_validates_again_unchanged(name: str, payload: dict[str, Any]) -> None:
    model = build_registry(load_settings({})).get(name).payload_model
    stored = model.model_validate(payload).model_dump(by_alias=True, mode="json")
    again = model.model_validate(stored)
    assert again.model_dump(by_alias=True, mode="json") == stored
