"""httpRequest: payload validation and the creation-time SSRF rule."""

from __future__ import annotations

from typing import Any

import pytest

from shared.job_types.http_request import JOB_TYPE, HttpMethod, HttpRequestPayload
from shared.registry import JobTypeRegistry, PayloadContext, PayloadRuleError
from shared.settings import load_settings
from tests.unit.job_types.fields import payload_errors

VALID: dict[str, Any] = {
    "url": "https://hooks.example.com/nightly",
    "method": "PUT",
    "headers": {"Authorization": "Bearer abc", "X-Trace": "1"},
    "body": {"hello": ["world"]},
    "timeoutSeconds": 30,
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def test_valid_payload() -> None:
    payload = HttpRequestPayload.model_validate(VALID)
    assert payload.method is HttpMethod.PUT
    assert payload.timeout_seconds == 30
    assert payload.body == {"hello": ["world"]}


def test_defaults() -> None:
    payload = HttpRequestPayload.model_validate({"url": "/hooks/a"})
    assert payload.method is HttpMethod.POST
    assert payload.timeout_seconds == 10
    assert payload.headers == {}
    assert payload.body is None


def test_a_string_body_is_kept_as_is() -> None:
    assert HttpRequestPayload.model_validate(_with(body="plain text")).body == "plain text"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"url": ""}, "url", "at least 1 character"),
        ({"url": "https://example.com/" + "a" * 2048}, "url", "at most 2048 characters"),
        ({"url": "ftp://example.com/"}, "url", "absolute http:// or https://"),
        ({"url": "http://user@example.com/"}, "url", "credentials"),
        ({"url": "//example.com/"}, "url", "single '/'"),
        ({"method": "TRACE"}, "method", "'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'"),
        ({"method": "post"}, "method", "'GET', 'POST'"),
        ({"headers": {"X-Cron-Signature": "forged"}}, "headers.X-Cron-Signature.[key]", "set by"),
        ({"headers": {"x-cron-job-id": "forged"}}, "headers.x-cron-job-id.[key]", "set by"),
        ({"headers": {"User-Agent": "me"}}, "headers.User-Agent.[key]", "set by the service"),
        ({"headers": {"Host": "internal"}}, "headers.Host.[key]", "set by the service"),
        ({"headers": {"Content-Length": "1"}}, "headers.Content-Length.[key]", "set by"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "headers.Transfer-Encoding.[key]", "set"),
        ({"headers": {"Connection": "close"}}, "headers.Connection.[key]", "set by the service"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name.[key]", "HTTP token"),
        ({"headers": {"X-Evil\r\nInjected": "x"}}, "headers.X-Evil\r\nInjected.[key]", "token"),
        ({"headers": {"X-A": "a\r\nX-Injected: 1"}}, "headers.X-A", "no CR, LF or NUL"),
        ({"headers": {"X-A": "nul\x00"}}, "headers.X-A", "no CR, LF or NUL"),
        ({"headers": {"X-A": "é"}}, "headers.X-A", "printable ASCII"),
        ({"headers": {"X-A": "x" * 2049}}, "headers.X-A", "at most 2048 characters"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers", "given twice"),
        ({"headers": {f"X-H{i}": "v" for i in range(31)}}, "headers", "at most 30 items"),
        ({"headers": {f"X-H{i}": "v" * 2000 for i in range(5)}}, "headers", "at most 8192"),
        ({"headers": ["X-A: 1"]}, "headers", "valid dictionary"),
        ({"body": "x" * 16_385}, "body", "at most 16384 allowed"),
        ({"body": {"blob": "x" * 16_400}}, "body", "at most 16384 allowed"),
        ({"body": {"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}}, "body", "at most 6"),
        ({"body": 42}, "body", "a string or a JSON object"),
        ({"body": ["a"]}, "body", "a string or a JSON object"),
        ({"method": "GET", "body": "x"}, "body", "GET request carries no body"),
        ({"timeoutSeconds": 0}, "timeoutSeconds", "greater than or equal to 1"),
        ({"timeoutSeconds": 61}, "timeoutSeconds", "less than or equal to 60"),
        ({"timeoutSeconds": "10"}, "timeoutSeconds", "valid integer"),
        ({"followRedirects": True}, "followRedirects", "not permitted"),
    ],
)
def test_each_invalid_field_is_named(changes: dict[str, Any], field: str, message: str) -> None:
    errors = payload_errors(HttpRequestPayload, _with(**changes))
    assert field in errors, errors
    assert message in errors[field]


def test_get_without_body_is_fine() -> None:
    payload = HttpRequestPayload.model_validate({"url": "/x", "method": "GET"})
    assert payload.body is None


def _validate(payload: dict[str, Any], is_admin: bool = False, **settings: Any) -> None:
    context = PayloadContext(load_settings({}, **settings), is_admin=is_admin)
    JobTypeRegistry([JOB_TYPE]).validate_payload("httpRequest", payload, context)


ALLOWED: dict[str, Any] = {
    "http_allowed_hosts": ["hooks.example.com", "*.partner.net", "127.0.0.1", "10.0.0.5"],
    "http_base_url": "http://backend.internal:9000/hooks",
}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/nightly",
        "https://HOOKS.example.com./x",
        "http://api.partner.net:8443/x",
        "/relative/to/the/base",
    ],
)
def test_rule_accepts_allowed_hosts_and_paths(url: str) -> None:
    _validate(_with(url=url), **ALLOWED)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://evil.example.org/x", "host 'evil.example.org' is not allowed"),
        ("https://partner.net/x", "host 'partner.net' is not allowed"),
        ("http://127.0.0.1:8080/admin", "address 127.0.0.1 which is loopback"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 which is cloud metadata"),
        ("http://10.0.0.5/internal", "address 10.0.0.5 which is private"),
        ("http://192.168.0.1/", "address 192.168.0.1 which is private"),
        ("http://[::1]/", "address ::1 which is loopback"),
        ("http://[::ffff:127.0.0.1]/", "which is loopback"),
    ],
)
def test_rule_refuses_disallowed_hosts_and_non_public_addresses(url: str, message: str) -> None:
    with pytest.raises(PayloadRuleError) as error:
        _validate(_with(url=url), **ALLOWED)
    assert error.value.field == "url"
    assert message in error.value.message
    assert "CRON_" not in error.value.message  # the owner never sees the operator's settings


def test_without_a_base_url_relative_urls_are_refused_saying_what_is_missing() -> None:
    # The default base URL is empty: it must never default to the API's own address.
    assert load_settings({}).http_base_url == ""
    with pytest.raises(PayloadRuleError) as error:
        _validate(_with(url="/hooks/nightly"))
    assert error.value.field == "url"
    assert "relative URLs are not available" in error.value.message
    assert "operator has not configured the base URL" in error.value.message


@pytest.mark.parametrize(
    ("url", "settings"),
    [
        # The API's listening address, also by another loopback name.
        ("http://127.0.0.1:8000/api/cron/jobs/x/run-now", {}),
        ("http://localhost:8000/api/cron/jobs", {}),
        ("http://localhost:8443/api", {"api_host": "0.0.0.0", "api_port": 8443}),
        # CRON_PUBLIC_BASE_URL, on an allowed host.
        ("https://cron.example.com/api/cron/jobs", {"public_base_url": "https://cron.example.com"}),
        # A base URL that is the API itself (a misconfiguration): relative URLs are refused.
        ("/api/cron/jobs/x/run-now", {"http_base_url": "http://127.0.0.1:8000"}),
    ],
)
def test_the_api_itself_is_never_a_target(url: str, settings: dict[str, Any]) -> None:
    allowed = ["cron.example.com", "127.0.0.1", "localhost"]
    with pytest.raises(PayloadRuleError) as error:
        _validate(
            _with(url=url),
            True,
            http_allowed_hosts=allowed,
            http_allow_private_networks=True,
            **settings,
        )
    assert "points at the cron service itself" in error.value.message


def test_admins_may_call_any_host_only_when_configured() -> None:
    payload = _with(url="https://anywhere.example.org/")
    with pytest.raises(PayloadRuleError):
        _validate(payload, is_admin=True)
    _validate(payload, is_admin=True, http_admin_any_host=True)
    with pytest.raises(PayloadRuleError):
        _validate(payload, is_admin=False, http_admin_any_host=True)


def test_admins_still_cannot_target_private_addresses() -> None:
    with pytest.raises(PayloadRuleError, match="loopback"):
        _validate(_with(url="http://127.0.0.1/"), is_admin=True, http_admin_any_host=True)


def test_private_addresses_can_be_allowed_for_tests() -> None:
    _validate(_with(url="http://127.0.0.1:8080/x"), http_allow_private_networks=True, **ALLOWED)
