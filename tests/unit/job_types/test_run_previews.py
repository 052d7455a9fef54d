"""What a dry-run shows of a run, rendered and signed by the code the handlers send with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.job_types import BUILTIN_TYPES, email_message, email_templates, http_call
from shared.job_types.http_request import HttpRequestPayload
from shared.job_types.http_signature import signature
from shared.job_types.send_email import SendEmailPayload
from shared.registry import JobTypeRegistry
from shared.run_identity import dry_run_identity
from shared.settings import load_settings
from tests.unit.api.echo import ECHO_TYPE

SLOT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
SETTINGS = load_settings(
    {},
    http_base_url="https://hooks.example.com/base/",
    http_signing_secret="s3cret-for-tests-only-0123456789",
    smtp_from="Cron <cron@mail.example.com>",
)
REGISTRY = JobTypeRegistry([*BUILTIN_TYPES, ECHO_TYPE])
IDENTITY = dry_run_identity("nightly ✓ sync", SLOT, "Europe/Berlin")


def describe(type_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    job_type = REGISTRY.get(type_name)
    return job_type.describe_run(IDENTITY, job_type.payload_model.model_validate(payload), SETTINGS)


def test_an_http_request_is_shown_signed_as_the_handler_signs_it() -> None:
    run = describe(
        "httpRequest",
        {"url": "/hooks/nightly?x=1", "headers": {"Authorization": "Bearer t"}, "body": {"a": 1}},
    )
    assert run["kind"] == "httpRequest"
    assert (run["method"], run["url"]) == (
        "POST",
        "https://hooks.example.com/base/hooks/nightly?x=1",
    )
    assert run["body"] == '{"a":1}'
    headers = run["headers"]
    timestamp = int(SLOT.timestamp())
    assert headers["X-Cron-Timestamp"] == str(timestamp)
    secret = SETTINGS.http_signing_secret.get_secret_value()
    expected = signature(secret, timestamp, b'{"a":1}')
    assert headers["X-Cron-Signature"] == f"t={timestamp},v1={expected}"
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer t"
    assert headers["X-Cron-Job"] == "nightly %E2%9C%93 sync"
    assert headers["X-Cron-Scheduled-For"] == "2026-11-23T07:00:00.000Z"
    assert headers["X-Cron-Idempotency-Key"] == "dry-run:2026-11-23T07:00:00Z"
    # Exactly the headers the handler assembles for the first hop.
    payload = HttpRequestPayload.model_validate(
        {"url": "/hooks/nightly?x=1", "headers": {"Authorization": "Bearer t"}, "body": {"a": 1}}
    )
    body, content_type = http_call.body_of(payload)
    service = http_call.identity_headers(IDENTITY, SETTINGS, timestamp, body)
    assert headers == http_call.request_headers(dict(payload.headers), content_type, service)


def test_a_job_content_type_wins_and_a_get_has_no_body() -> None:
    run = describe("httpRequest", {"url": "https://hooks.example.com/base/x", "method": "GET"})
    assert (run["method"], run["body"]) == ("GET", None)
    assert "Content-Type" not in run["headers"]
    timestamp = int(SLOT.timestamp())
    secret = SETTINGS.http_signing_secret.get_secret_value()
    assert run["headers"]["X-Cron-Signature"].endswith(signature(secret, timestamp, b""))
    own = describe(
        "httpRequest",
        {"url": "/x", "headers": {"content-type": "text/csv"}, "body": "a,b"},
    )
    assert own["headers"]["content-type"] == "text/csv"
    assert "Content-Type" not in own["headers"]


def test_an_email_is_rendered_as_the_handler_renders_it_and_hostile_params_are_escaped() -> None:
    hostile = "<script>alert(1)</script> & {{ 7*7 }}"
    payload: dict[str, Any] = {
        "to": ["ada@example.com", "bob@example.com"],
        "subject": "Reminder: <b>now</b>",
        "template": "reminder",
        "params": {"title": hostile},
    }
    run = describe("sendEmail", payload)
    assert run["kind"] == "email"
    assert run["subject"] == "Reminder: <b>now</b>"
    assert run["to"] == ["ada@example.com", "bob@example.com"]
    assert hostile in run["text"]  # plain text stays verbatim, and the template is not re-run
    assert "<script>" not in run["html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; {{ 7*7 }}" in run["html"]
    rendered = email_templates.render(None, "reminder", payload["params"])
    assert (run["text"], run["html"]) == (rendered.text, rendered.html)
    key = "dry-run:2026-11-23T07:00:00Z"
    assert run["headers"]["Message-ID"] == email_message.message_id(key, SETTINGS.smtp_from)
    assert run["headers"]["X-Cron-Job-Id"] == "dry-run"
    assert run["headers"]["Auto-Submitted"] == "auto-generated"
    # The same message object the handler sends.
    message = email_message.build_message(
        IDENTITY,
        SETTINGS,
        SendEmailPayload.model_validate(payload).to,
        payload["subject"],
        rendered,
    )
    assert message["Message-ID"] == run["headers"]["Message-ID"]


def test_a_report_shows_the_period_it_would_cover_in_the_jobs_zone() -> None:
    run = describe("generateReport", {"type": "jobRuns", "period": "daily"})
    assert run == {
        "kind": "generateReport",
        "reportType": "jobRuns",
        "period": "daily",
        "periodStart": "2026-11-22T07:00:00Z",
        "periodEnd": "2026-11-23T07:00:00Z",
        "timezone": "Europe/Berlin",
    }


def test_admin_types_and_types_without_a_preview() -> None:
    assert describe("noop", {"failAttempts": 1})["outcome"] == "fails"
    assert describe("noop", {})["outcome"] == "succeeds"
    purge = describe("purgeSessions", {"inactiveDays": 30})
    assert purge["deletesLastSeenBefore"] == "2026-10-24T07:00:00Z"
    assert describe("echo", {"message": "hi"}) == {
        "kind": "echo",
        "description": ECHO_TYPE.description,
    }
