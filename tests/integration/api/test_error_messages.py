"""Validation errors say which field and what to send; a stale If-Match is judged first."""

from __future__ import annotations

import pytest

from tests.integration.api.helpers import Api, echo_job, field_errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": " ", "type": "echo", "cron": "* * * * *"}, {"name": "must not be blank"}),
        ({"name": "a", "cron": "* * * * *"}, {"type": "is required"}),
        ({"name": "a", "type": "echo", "cron": 5}, {"cron": "must be a valid string"}),
        (
            {"name": "a", "type": "echo", "cron": "* * * * *", "timeoutSeconds": 0},
            {"timeoutSeconds": "must be greater than or equal to 1"},
        ),
        (
            {"name": "a", "type": "echo", "cron": "* * * * *", "overlapPolicy": "never"},
            {"overlapPolicy": "must be 'skip' or 'allow'"},
        ),
        (
            {"name": "a", "type": "echo", "cron": "* * * * *", "colour": "red"},
            {"colour": "is not a known field (remove it)"},
        ),
        ([1, 2], {"body": "a JSON object body is required"}),
    ],
)
async def test_framework_validation_names_the_field_and_the_expectation(
    api: Api, body: object, expected: dict[str, str]
) -> None:
    response = await api.request("POST", "/jobs", json=body)
    assert response.status_code == 422
    assert field_errors(response) == expected
    detail = response.json()["detail"]
    # The detail repeats the field errors instead of a generic sentence.
    assert detail == "; ".join(f"{field}: {message}" for field, message in expected.items())
    assert "Value error" not in response.text and "the request is invalid" not in detail


async def test_query_parameter_errors_say_what_to_send(api: Api) -> None:
    response = await api.request("GET", "/jobs?limit=0&enabled=maybe")
    assert response.status_code == 422
    assert field_errors(response) == {
        "limit": "must be an integer >= 1",
        "enabled": "must be true or false",
    }


async def test_payload_validator_messages_have_no_library_prefix(api: Api) -> None:
    body = {
        "name": "mail",
        "type": "sendEmail",
        "cron": "0 8 * * *",
        "payload": {"to": "a@example.com", "subject": "\u2028", "template": "reminder"},
    }
    response = await api.request("POST", "/jobs", json=body)
    assert response.status_code == 422
    message = field_errors(response)["payload.subject"]
    assert message.startswith("must be one line"), message


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_stale_if_match_is_412_even_when_the_body_is_invalid(api: Api, method: str) -> None:
    job = await api.create(echo_job())
    changed = await api.request("PATCH", f"/jobs/{job['id']}", json={"cron": "*/10 * * * *"})
    assert changed.status_code == 200
    invalid_body = {"name": "", "cron": 12}
    response = await api.request(
        method, f"/jobs/{job['id']}", json=invalid_body, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 412, response.text
    assert response.headers["ETag"] == '"2"'
    # With the current version, the same body is judged on its merits.
    current = await api.request(
        method, f"/jobs/{job['id']}", json=invalid_body, headers={"If-Match": '"2"'}
    )
    assert current.status_code == 422


async def test_if_match_on_another_owners_job_is_404_before_the_body(api: Api) -> None:
    job = await api.create(echo_job())
    response = await api.request(
        "PUT", f"/jobs/{job['id']}", sub="mallory", json={}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 404
