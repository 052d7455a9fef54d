"""Conflicts, preconditions, quota, minimum interval, rate and size limits, field-named errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.db import RUNS
from tests.integration.api.helpers import (
    ALICE,
    BOB,
    ROOT,
    Api,
    echo_job,
    field_errors,
    noop_job,
    snapshot,
)


async def test_duplicate_name_is_409_on_create_and_rename(api: Api) -> None:
    await api.create(echo_job("digest"))
    other = await api.create(echo_job("other"))
    duplicate = await api.request("POST", "/jobs", json=echo_job("digest"))
    assert duplicate.status_code == 409
    assert "digest" in duplicate.json()["detail"]
    renamed = await api.request("PATCH", f"/jobs/{other['id']}", json={"name": "digest"})
    assert renamed.status_code == 409
    replaced = await api.request("PUT", f"/jobs/{other['id']}", json=echo_job("digest"))
    assert replaced.status_code == 409


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_stale_if_match_is_412_and_changes_nothing(api: Api, method: str) -> None:
    job = await api.create(echo_job())
    path = f"/jobs/{job['id']}"
    await api.request("PATCH", path, json={"name": "changed elsewhere"})
    before = await snapshot(api.db)
    body = {"PUT": echo_job("mine"), "PATCH": {"enabled": False}, "DELETE": None}[method]
    stale = await api.request(method, path, json=body, headers={"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["ETag"] == '"2"'
    assert await snapshot(api.db) == before
    fresh = await api.request(method, path, json=body, headers={"If-Match": '"2"'})
    assert fresh.status_code in (200, 204), fresh.text


async def test_if_match_star_and_weak_tags_are_understood(api: Api) -> None:
    job = await api.create(echo_job())
    path = f"/jobs/{job['id']}"
    star = await api.request("PATCH", path, json={"name": "a"}, headers={"If-Match": "*"})
    assert star.status_code == 200
    # Strong comparison (RFC 9110): a weak ETag never satisfies If-Match, even the current one.
    weak = await api.request("PATCH", path, json={"name": "b"}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 412, weak.text
    assert weak.headers["ETag"] == '"2"'
    assert (await api.request("GET", path)).json()["name"] == "a"
    bad = await api.request("PATCH", path, json={"name": "c"}, headers={"If-Match": "yesterday"})
    assert bad.status_code == 400
    assert field_errors(bad) == {"If-Match": 'expected one ETag such as "3"'}


async def test_concurrent_patches_without_if_match_lose_nothing(api: Api) -> None:
    job = await api.create(echo_job(payload={"message": "m"}))
    path = f"/jobs/{job['id']}"
    results = await asyncio.gather(
        api.request("PATCH", path, json={"name": "renamed"}),
        api.request("PATCH", path, json={"timeoutSeconds": 7}),
        api.request("PATCH", path, json={"enabled": False}),
    )
    assert [result.status_code for result in results] == [200, 200, 200]
    final = (await api.request("GET", path)).json()
    assert (final["name"], final["timeoutSeconds"], final["enabled"]) == ("renamed", 7, False)
    assert final["version"] == 4


async def test_quota_per_owner(make_api: Any) -> None:
    api: Api = await make_api(max_jobs_per_owner=2)
    await api.create(echo_job("1"))
    await api.create(echo_job("2"))
    over = await api.request("POST", "/jobs", json=echo_job("3"))
    assert over.status_code == 409
    assert "2 jobs" in over.json()["detail"]
    assert (await api.request("POST", "/jobs", sub=BOB, json=echo_job("3"))).status_code == 201
    assert (await api.create(echo_job("3", ownerId=ROOT), sub=ROOT, admin=True))["id"]


@pytest.mark.parametrize(
    ("cron", "allowed"),
    [
        ("* * * * *", True),  # every minute = the default minimum
        ("*/30 * * * * *", False),
        ("0,30 * * * * *", False),
        ("0 * * * * *", True),  # seconds field, but once a minute
        ("* * * * * *", False),
        ("0 0,1 * * *", True),
    ],
)
async def test_minimum_interval_for_non_admins(api: Api, cron: str, allowed: bool) -> None:
    response = await api.request("POST", "/jobs", json=echo_job(cron=cron))
    if allowed:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422
    assert "minimum interval" in field_errors(response)["cron"]
    admin = await api.request("POST", "/jobs", sub=ROOT, admin=True, json=echo_job(cron=cron))
    assert admin.status_code == 201


async def test_minimum_interval_above_a_minute_is_checked_for_five_field_crons(
    make_api: Any,
) -> None:
    api: Api = await make_api(min_interval_seconds=300)
    rejected = await api.request("POST", "/jobs", json=echo_job(cron="*/2 * * * *"))
    assert "300 s" in field_errors(rejected)["cron"]
    assert (
        await api.request("POST", "/jobs", json=echo_job(cron="*/5 * * * *"))
    ).status_code == 201


async def test_rate_limit_per_owner_answers_429_with_retry_after(make_api: Any) -> None:
    api: Api = await make_api(rate_limit="3/minute")
    statuses = [(await api.request("GET", "/jobs")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await api.request("GET", "/jobs")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["status"] == 429
    # Another owner has their own budget; health checks are never limited.
    assert (await api.request("GET", "/jobs", sub=BOB)).status_code == 200
    assert (await api.request("GET", "/healthz", sub=None)).status_code == 200


async def test_oversized_body_is_413(api: Api) -> None:
    before = await snapshot(api.db)
    body = echo_job(payload={"message": "x" * (api.settings.max_body_bytes + 1)})
    response = await api.request("POST", "/jobs", json=body)
    assert response.status_code == 413
    assert response.json()["status"] == 413
    assert await snapshot(api.db) == before


async def test_unknown_fields_are_422_naming_them(api: Api) -> None:
    response = await api.request(
        "POST", "/jobs", json=echo_job(colour="blue", retry={"maxAttempts": 2, "jitter": True})
    )
    assert response.status_code == 422
    errors = field_errors(response)
    assert set(errors) == {"colour", "retry.jitter"}
    snake = await api.request("POST", "/jobs", json=echo_job(timeout_seconds=5))
    assert set(field_errors(snake)) == {"timeout_seconds"}
    job = await api.create(echo_job())
    patched = await api.request("PATCH", f"/jobs/{job['id']}", json={"status": "idle"})
    assert set(field_errors(patched)) == {"status"}
    for field in ("ownerId", "version", "lastRunAt", "runCount", "id", "createdAt"):
        response = await api.request("PATCH", f"/jobs/{job['id']}", json={field: "x"})
        assert set(field_errors(response)) == {field}, field


MALFORMED_IDS = [
    "123",
    "zzzzzzzzzzzzzzzzzzzzzzzz",
    "6740a1f2c3d4e5f60123456",
    "%24where",
    "null",
    "a" * 65,  # beyond any length limit: still 404, never a 422 naming the path parameter
    "6740a1f2c3d4e5f601234567" * 3,
    "x" * 2000,
]


@pytest.mark.parametrize("job_id", MALFORMED_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PUT", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/run-now"),
        ("GET", "/runs"),
        ("GET", "/reports"),
    ],
)
async def test_malformed_ids_are_404(api: Api, job_id: str, method: str, suffix: str) -> None:
    body = {"PATCH": {"enabled": False}, "PUT": echo_job()}.get(method)
    response = await api.request(method, f"/jobs/{job_id}{suffix}", json=body)
    assert response.status_code == 404
    assert response.json()["detail"] == "job not found"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (echo_job(name=""), {"name"}),
        (echo_job(name="a\nb"), {"name"}),
        (echo_job(name="n" * 101), {"name"}),
        (echo_job(type="nope"), {"type"}),
        (echo_job(cron="61 * * * *"), {"cron"}),
        (echo_job(cron="* * *"), {"cron"}),
        (echo_job(timezone="Mars/Olympus"), {"timezone"}),
        (echo_job(timezone=""), {"timezone"}),
        (echo_job(payload={"count": 11}), {"payload.count"}),
        (echo_job(payload={"recipients": ["a@example.com", "nope"]}), {"payload.recipients[1]"}),
        (echo_job(payload={"unknown": 1}), {"payload.unknown"}),
        (echo_job(payload={"message": "forbidden"}), {"payload.message"}),
        (echo_job(payload={"extra": {"$where": "1"}}), {"payload.extra.'$where'"}),
        (echo_job(payload={"extra": {"a.b": 1}}), {"payload.extra.'a.b'"}),
        (echo_job(payload={"extra": {"n": 2**70}}), {"payload.extra.n"}),
        (echo_job(retry={"maxAttempts": 0}), {"retry.maxAttempts"}),
        (echo_job(timeoutSeconds=0), {"timeoutSeconds"}),
        (echo_job(timeoutSeconds=10**6), {"timeoutSeconds"}),
        (echo_job(overlapPolicy="sometimes"), {"overlapPolicy"}),
        (echo_job(misfirePolicy="never"), {"misfirePolicy"}),
        (echo_job(misfireGraceSeconds=-1), {"misfireGraceSeconds"}),
        (echo_job(jitterSeconds=-1), {"jitterSeconds"}),
        (echo_job(jitterSeconds=3601), {"jitterSeconds"}),
        (echo_job(cron="*/10 * * * *", jitterSeconds=301), {"jitterSeconds"}),
        (echo_job(enabled="maybe"), {"enabled"}),
        ({"type": "echo", "cron": "* * * * *"}, {"name"}),
        (
            echo_job(cron="61 * * * *", timezone="Nowhere/Land", payload={"count": -1}),
            {"cron", "timezone", "payload.count"},
        ),
    ],
)
async def test_every_validation_error_names_its_field(
    api: Api, body: dict[str, Any], fields: set[str]
) -> None:
    response = await api.request("POST", "/jobs", json=body)
    assert response.status_code == 422, response.text
    errors = field_errors(response)
    assert set(errors) == fields
    assert all(message for message in errors.values())


async def test_error_messages_say_what_is_wrong(api: Api) -> None:
    cron = await api.request("POST", "/jobs", json=echo_job(cron="0 25 * * *"))
    assert "hour" in field_errors(cron)["cron"]
    zone = await api.request("POST", "/jobs", json=echo_job(timezone="Europe/Atlantis"))
    assert "IANA" in field_errors(zone)["timezone"]
    unknown = await api.request("POST", "/jobs", json=echo_job(type="shell"))
    message = field_errors(unknown)["type"]
    assert "echo" in message
    assert "noop" not in message  # admin-only types are not offered to non-admins


async def test_payload_depth_is_limited(api: Api) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(api.settings.max_payload_depth):
        deep = {"nested": deep}
    response = await api.request("POST", "/jobs", json=echo_job(payload={"extra": deep}))
    assert response.status_code == 422
    assert "levels deep" in field_errors(response)["payload"]


async def test_patch_rejects_null_and_validates_the_merged_job(api: Api) -> None:
    job = await api.create(echo_job())
    path = f"/jobs/{job['id']}"
    null = await api.request("PATCH", path, json={"cron": None})
    assert set(field_errors(null)) == {"cron"}
    wrong_type = await api.request("PATCH", path, json={"type": "sendEmail"})
    assert wrong_type.status_code == 422
    assert all(field.startswith("payload") for field in field_errors(wrong_type))
    too_fast = await api.request("PATCH", path, json={"cron": "* * * * * *"})
    assert set(field_errors(too_fast)) == {"cron"}


async def test_preview_validates_like_a_save(api: Api) -> None:
    bad = await api.request("POST", "/preview", json={"cron": "* * * * * *", "count": 1000})
    assert set(field_errors(bad)) == {"count"}
    fast = await api.request("POST", "/preview", json={"cron": "* * * * * *"})
    assert set(field_errors(fast)) == {"cron"}
    admin = await api.request(
        "POST", "/preview", sub=ROOT, admin=True, json={"cron": "* * * * * *"}
    )
    assert admin.status_code == 200
    assert len(admin.json()["fireTimes"]) == 10


async def test_bad_cursor_and_limit_are_422(api: Api) -> None:
    cases = [
        ({"cursor": "nope"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"status": "sleeping"}, "status"),
    ]
    for params, field in cases:
        response = await api.request("GET", "/jobs", params=params)
        assert response.status_code == 422, params
        assert set(field_errors(response)) == {field}


@pytest.mark.parametrize(
    ("path", "params", "fields"),
    [
        ("/jobs", {"type": "t" * 65}, {"type"}),
        ("/jobs", {"ownerId": "o" * 257}, {"ownerId"}),
        ("/jobs", {"enabled": "maybe"}, {"enabled"}),
        ("/jobs", {"status": "sleeping"}, {"status"}),
        ("/jobs", {"limit": "ten"}, {"limit"}),
        ("/jobs", {"cursor": "nope"}, {"cursor"}),
        ("/jobs", {"limit": 0, "type": "t" * 65, "enabled": "x"}, {"limit", "type", "enabled"}),
        ("/jobs/6740a1f2c3d4e5f601234567/runs", {"limit": 0}, {"limit"}),
        ("/jobs/6740a1f2c3d4e5f601234567/reports", {"limit": "x"}, {"limit"}),
    ],
)
async def test_query_errors_name_the_parameter_as_the_client_sends_it(
    api: Api, path: str, params: dict[str, Any], fields: set[str]
) -> None:
    response = await api.request("GET", path, params=params)
    assert response.status_code == 422, response.text
    assert set(field_errors(response)) == fields


async def test_job_of_admin_only_type_is_read_only_for_its_owner(api: Api) -> None:
    job = await api.create(noop_job(ownerId=ALICE), sub=ROOT, admin=True)
    listed = await api.request("GET", "/jobs")
    assert [item["id"] for item in listed.json()["items"]] == [job["id"]]
    pause = await api.request("PATCH", f"/jobs/{job['id']}", json={"enabled": False})
    assert pause.status_code == 403
    # Every write and trigger of an admin-only type needs an admin (deleting it too).
    assert (await api.request("DELETE", f"/jobs/{job['id']}")).status_code == 403
    run_now = await api.request("POST", f"/jobs/{job['id']}/run-now")
    assert run_now.status_code == 403
    assert await api.db[RUNS].count_documents({}) == 0
    deleted = await api.request("DELETE", f"/jobs/{job['id']}", sub=ROOT, admin=True)
    assert deleted.status_code == 204
