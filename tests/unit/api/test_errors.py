"""Mapping Litestar's validation keys onto documented field names."""

from __future__ import annotations

from api.errors import _field_name, _validation_errors


def test_field_names() -> None:
    assert _field_name("retry.maxAttempts") == "retry.maxAttempts"
    assert _field_name("payload.to.1") == "payload.to[1]"
    assert _field_name("a.10.b.2") == "a[10].b[2]"
    assert _field_name("") == "body"
    assert _field_name("data") == "body"


def test_validation_errors_from_litestar_extra() -> None:
    extra = [{"key": "limit", "message": "bad"}, {"message": "x"}, "junk"]
    errors = _validation_errors(extra, {})
    assert [(error.field, error.message) for error in errors] == [("limit", "bad"), ("body", "x")]
    missing = _validation_errors([{"key": "data", "message": "'data'"}], {})
    assert missing[0].message == "a JSON object body is required"
    assert [error.field for error in _validation_errors(None, {})] == ["body"]


def test_parameters_are_named_as_clients_send_them() -> None:
    names = {"job_type": "type", "owner_id": "ownerId"}
    extra = [
        {"key": "job_type", "message": "long", "source": "query"},
        {"key": "owner_id", "message": "long", "source": "query"},
        {"key": "job_type", "message": "a body field keeps its name", "source": "body"},
    ]
    fields = [error.field for error in _validation_errors(extra, names)]
    assert fields == ["type", "ownerId", "job_type"]
