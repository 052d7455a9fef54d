"""`POST /jobs/dry-run`: validated exactly as a create, previewed, nothing saved or sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shared.db import OWNER_QUOTAS
from shared.job_types.http_signature import signature
from tests.integration.api.conftest import ApiFactory
from tests.integration.api.helpers import ALICE, BOB, Api, echo_job, noop_job, snapshot

SECRET = "dry-run-signing-secret-0123456789abcdef"
EMAIL: dict[str, Any] = {
    "name": "stand-up",
    "type": "sendEmail",
    "cron": "0 8 * * 1-5",
    "timezone": "Europe/Berlin",
    "payload": {
        "to": ["alice@example.com"],
        "subject": "Stand-up",
        "template": "reminder",
        "params": {"title": "Stand-up at 9:00"},
    },
}


@pytest.fixture
async def hooks_api(make_api: ApiFactory) -> Api:
    """The API with a backend base URL, one allowed host and a known signing secret."""
    result: Api = await make_api(
        http_base_url="https://backend.example.com/base/",
        http_allowed_hosts=["hooks.example.com"],
        http_signing_secret=SECRET,
    )
    return result


async def dry_run(
    api: Api, body: Any, sub: str | None = ALICE, admin: bool = False, **params: Any
) -> Any:
    return await api.request("POST", "/jobs/dry-run", sub, admin, json=body, params=params)


async def test_an_email_job_shows_its_fire_times_and_the_rendered_message(api: Api) -> None:
    before = await snapshot(api.db)
    response = await dry_run(api, EMAIL, count=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["type"], body["cron"], body["timezone"]) == (
        "sendEmail",
        "0 8 * * 1-5",
        "Europe/Berlin",
    )
    utc = [datetime.fromisoformat(item["utc"].replace("Z", "+00:00")) for item in body["fireTimes"]]
    assert len(utc) == 3 and utc == sorted(utc)
    assert all(
        item["local"].endswith(("T08:00:00+01:00", "T08:00:00+02:00")) for item in body["fireTimes"]
    )
    run = body["run"]
    assert (run["kind"], run["subject"], run["to"]) == ("email", "Stand-up", ["alice@example.com"])
    assert "Stand-up at 9:00" in run["text"] and "Stand-up at 9:00" in run["html"]
    assert run["headers"]["X-Cron-Job-Id"] == "dry-run"
    assert await snapshot(api.db) == before  # no job, no run, no report
    assert await api.db[OWNER_QUOTAS].count_documents({}) == 0  # no quota unit taken


async def test_hostile_email_params_are_escaped_in_the_html_and_not_evaluated(api: Api) -> None:
    hostile = "<img src=x onerror=alert(1)>{{ config }}{% raw %}"
    body = {**EMAIL, "payload": {**EMAIL["payload"], "params": {"title": hostile}}}
    response = await dry_run(api, body)
    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert hostile in run["text"]
    assert "<img" not in run["html"] and "&lt;img src=x onerror=alert(1)&gt;" in run["html"]


async def test_an_http_request_is_shown_signed_without_being_sent(hooks_api: Api) -> None:
    body = {
        "name": "sync",
        "type": "httpRequest",
        "every": "PT90M",
        "payload": {"url": "/hooks/sync", "method": "PUT", "body": {"full": True}},
    }
    response = await dry_run(hooks_api, body)
    assert response.status_code == 200, response.text
    result = response.json()
    run = result["run"]
    assert (run["method"], run["url"]) == ("PUT", "https://backend.example.com/base/hooks/sync")
    assert run["body"] == '{"full":true}'
    first = datetime.fromisoformat(result["fireTimes"][0]["utc"].replace("Z", "+00:00"))
    timestamp = int(first.timestamp())
    headers = run["headers"]
    expected = signature(SECRET, timestamp, b'{"full":true}')
    assert headers["X-Cron-Signature"] == f"t={timestamp},v1={expected}"
    assert headers["X-Cron-Timestamp"] == str(timestamp)
    assert headers["Content-Type"] == "application/json"
    assert result["every"] == "PT90M" and result["anchorAt"] is not None


async def test_an_absolute_url_on_an_allowed_host_is_not_resolved(hooks_api: Api) -> None:
    # `hooks.example.com` resolves nowhere useful in a test: the dry-run never looks it up.
    body = {
        "name": "ping",
        "type": "httpRequest",
        "cron": "*/5 * * * *",
        "payload": {"url": "https://hooks.example.com/ping", "method": "GET"},
    }
    response = await dry_run(hooks_api, body)
    assert response.status_code == 200, response.text
    assert response.json()["run"]["url"] == "https://hooks.example.com/ping"
    refused = {**body, "payload": {"url": "https://elsewhere.example.org/ping"}}
    assert (await dry_run(hooks_api, refused)).status_code == 422


async def test_other_types_describe_what_a_run_would_do(api: Api) -> None:
    report = {
        "name": "r",
        "type": "generateReport",
        "cron": "0 7 * * *",
        "payload": {"type": "jobFailures", "period": "weekly"},
    }
    response = await dry_run(api, report)
    assert response.status_code == 200, response.text
    assert response.json()["run"]["kind"] == "generateReport"
    assert response.json()["run"]["reportType"] == "jobFailures"
    echo = await dry_run(api, echo_job())
    assert echo.json()["run"] == {"kind": "echo", "description": "Test type: echoes a message."}
    noop = await dry_run(api, noop_job(payload={"failAttempts": 2}), "root", admin=True)
    assert noop.status_code == 200, noop.text
    assert noop.json()["run"] == {
        "kind": "noop",
        "sleepSeconds": 0.0,
        "failAttempts": 2,
        "outcome": "fails",
    }


BAD_BODIES: list[Any] = [
    {**EMAIL, "cron": "61 * * * *"},
    {**EMAIL, "cron": None},
    {**EMAIL, "every": "PT1H"},
    {**EMAIL, "every": "P1M", "cron": None},  # months vary in length: refused
    {**EMAIL, "timezone": "Mars/Olympus"},
    {**EMAIL, "type": "mineBitcoin"},
    {**EMAIL, "name": ""},
    {**EMAIL, "name": "two\nlines"},
    {**EMAIL, "colour": "red"},
    {**EMAIL, "retry": {"maxAttempts": 0}},
    {**EMAIL, "timeoutSeconds": 10**6},
    {**EMAIL, "overlapPolicy": "sometimes"},
    {**EMAIL, "payload": {**EMAIL["payload"], "to": ["alice@example.com", "not-an-address"]}},
    {**EMAIL, "payload": {**EMAIL["payload"], "template": "nope"}},
    {**EMAIL, "payload": {**EMAIL["payload"], "params": {}}},
    {**EMAIL, "payload": {**EMAIL["payload"], "subject": "a\r\nBcc: x@example.com"}},
    {**EMAIL, "payload": {**EMAIL["payload"], "$where": 1}},
    {**EMAIL, "cron": "* * * * * *"},  # seconds: below the minimum interval for a user
    echo_job(payload={"message": "forbidden"}),
    echo_job(payload={"count": 11, "recipients": ["x"]}),
    {
        "name": "h",
        "type": "httpRequest",
        "cron": "0 * * * *",
        "payload": {"url": "http://127.0.0.1/x"},
    },
    {"name": "h", "type": "httpRequest", "cron": "0 * * * *", "payload": {"url": "/relative"}},
    noop_job(),  # admin-only type: 403
    {**EMAIL, "ownerId": BOB},  # another owner: 403
    [],
    "a string",
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
async def test_every_bad_body_is_refused_exactly_as_a_create_refuses_it(
    api: Api, body: Any
) -> None:
    created = await api.request("POST", "/jobs", json=body)
    dry = await dry_run(api, body)
    assert created.status_code in (403, 422), created.text
    assert (dry.status_code, dry.json()) == (created.status_code, created.json())


async def test_a_duplicate_name_and_a_full_quota_answer_409_like_a_create(
    make_api: ApiFactory,
) -> None:
    api = await make_api(max_jobs_per_owner=2)
    await api.create(echo_job("first"))
    duplicate = await dry_run(api, echo_job("first"))
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json() == (await api.request("POST", "/jobs", json=echo_job("first"))).json()
    assert (await dry_run(api, echo_job("second"))).status_code == 200
    await api.create(echo_job("second"))
    full = await dry_run(api, echo_job("third"))
    assert full.status_code == 409, full.text
    assert full.json() == (await api.request("POST", "/jobs", json=echo_job("third"))).json()
    # Admins are exempt from the quota, for themselves and for the owners they create for.
    assert (
        await dry_run(api, echo_job("third", ownerId=ALICE), "root", admin=True)
    ).status_code == 200


async def test_a_dry_run_needs_a_token(api: Api) -> None:
    response = await dry_run(api, EMAIL, sub=None)
    assert response.status_code == 401
