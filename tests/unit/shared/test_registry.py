"""The job-type registry: whitelist, disabling by configuration, payload validation."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.registry import (
    JobType,
    JobTypeRegistry,
    PayloadContext,
    PayloadRuleError,
    UnknownJobTypeError,
    build_registry,
)
from shared.settings import load_settings


class EchoPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


def _no_shouting(payload: EchoPayload, context: PayloadContext) -> None:
    if payload.text.isupper() and not context.is_admin:
        raise PayloadRuleError("text", "only admins may shout")


ECHO = JobType("echo", EchoPayload, "Echoes text.", rules=(_no_shouting,))
SECRET = JobType("secret", EchoPayload, "Admin thing.", admin_only=True)


def test_lookup_and_listing() -> None:
    registry = JobTypeRegistry([SECRET, ECHO])
    assert registry.names() == ["echo", "secret"]
    assert registry.get("secret").admin_only is True
    assert "echo" in registry
    assert [t.name for t in registry] == ["secret", "echo"]


def test_unknown_type_lists_the_allowed_ones() -> None:
    registry = JobTypeRegistry([ECHO, SECRET])
    with pytest.raises(UnknownJobTypeError) as error:
        registry.get("shell")
    assert error.value.allowed == ["echo", "secret"]
    assert "echo, secret" in str(error.value)


def test_disabled_types_are_not_offered() -> None:
    registry = JobTypeRegistry([ECHO, SECRET], disabled=["secret"])
    assert registry.names() == ["echo"]
    with pytest.raises(UnknownJobTypeError):
        registry.get("secret")


def test_duplicate_registration_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        JobTypeRegistry([ECHO, ECHO])


def test_payload_validation_model_then_rules() -> None:
    registry = JobTypeRegistry([ECHO])
    user = PayloadContext(load_settings({}), is_admin=False)
    admin = PayloadContext(load_settings({}), is_admin=True)
    assert registry.validate_payload("echo", {"text": "hi"}, user) == EchoPayload(text="hi")
    with pytest.raises(ValidationError):
        registry.validate_payload("echo", {"text": "hi", "extra": 1}, user)
    with pytest.raises(PayloadRuleError) as error:
        registry.validate_payload("echo", {"text": "HI"}, user)
    assert error.value.field == "text"
    assert registry.validate_payload("echo", {"text": "HI"}, admin) == EchoPayload(text="HI")


def test_json_schema_is_exposed_by_alias() -> None:
    schema = build_registry(load_settings({})).get("noop").json_schema()
    assert set(schema["properties"]) == {"sleepSeconds", "failAttempts"}
    assert schema["additionalProperties"] is False


def test_builtin_registry_honours_disabled_types_setting() -> None:
    assert "noop" in build_registry(load_settings({}))
    assert "noop" not in build_registry(load_settings({"CRON_DISABLED_TYPES": "noop"}))
