"""Security hardening (issue 11): admin-only types, exact quota, shared rate limit, strict payload
names, Location without Host, strong If-Match, and run-now refused to running jobs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from api.rate_limit_store import MongoRateLimitStore
from shared import quota
from shared.db import JOBS, OWNER_QUOTAS, RATE_LIMITS, RUNS
from tests.integration.api.helpers import ALICE, BOB, ROOT, Api, echo_job, field_errors, snapshot

ERROR_SHAPE = {"status", "title", "detail", "errors"}


def purge_job(**fields: Any) -> dict[str, Any]:
    base = {"name": "purge", "type": "purgeSessions", "cron": "0 3 * * *", "ownerId": ALICE}
    return {**base, "payload": {"inactiveDays": 30}, **fields}


# --- 3. admin-only types: every write and trigger needs an admin -------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "", echo_job("taken over")),
        ("PATCH", "", {"type": "echo", "payload": {"message": "mine now"}}),
        ("PATCH", "", {"enabled": False}),
        ("DELETE", "", None),
        ("POST", "/run-now", None),
    ],
)
async def test_an_owner_cannot_write_or_trigger_an_admin_only_job_in_their_account(
    api: Api, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    job = await api.create(purge_job(), sub=ROOT, admin=True)
    before = await snapshot(api.db)
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    response = await api.request(method, f"/jobs/{job['id']}{suffix}", **kwargs)
    assert response.status_code == 403, response.text
    assert "reserved for admins" in response.json()["detail"]
    assert await snapshot(api.db) == before
    # The admin may do each of these.
    allowed = await api.request(method, f"/jobs/{job['id']}{suffix}", ROOT, True, **kwargs)
    assert allowed.status_code in (200, 202, 204), allowed.text


# --- 4. the quota is exact under concurrency ------------------------------------------------


async def test_concurrent_creates_never_pass_the_quota(make_api: Any) -> None:
    api: Api = await make_api(max_jobs_per_owner=5)
    bodies = [echo_job(f"job {index}") for index in range(20)]
    responses = await asyncio.gather(*(api.request("POST", "/jobs", json=b) for b in bodies))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 5 + [409] * 15, statuses
    assert await api.db[JOBS].count_documents({"ownerId": ALICE}) == 5
    counter = await api.db[OWNER_QUOTAS].find_one({"_id": ALICE})
    assert counter is not None and counter["jobs"] == 5


async def test_concurrent_unlimited_creates_of_a_new_owner_are_all_counted(api: Api) -> None:
    # An admin's creates have no limit: racing to create the counter must never refuse one.
    bodies = [echo_job(f"job {index}", ownerId="carol") for index in range(20)]
    responses = await asyncio.gather(
        *(api.request("POST", "/jobs", ROOT, True, json=body) for body in bodies)
    )
    assert [response.status_code for response in responses] == [201] * 20
    assert (await api.db[OWNER_QUOTAS].find_one({"_id": "carol"}) or {})["jobs"] == 20


async def test_deletes_and_refused_creates_give_the_unit_back(make_api: Any) -> None:
    api: Api = await make_api(max_jobs_per_owner=2)
    first = await api.create(echo_job("one"))
    duplicate = await api.request("POST", "/jobs", json=echo_job("one"))
    assert duplicate.status_code == 409 and "already has a job named" in duplicate.text
    await api.create(echo_job("two"))
    full = await api.request("POST", "/jobs", json=echo_job("three"))
    assert full.status_code == 409 and "maximum" in full.json()["detail"]
    assert (await api.request("DELETE", f"/jobs/{first['id']}")).status_code == 204
    await api.create(echo_job("three"))
    # An admin's jobs for the owner count too (the admin is not limited).
    await api.create(echo_job("by admin", ownerId=ALICE), sub=ROOT, admin=True)
    assert (await api.db[OWNER_QUOTAS].find_one({"_id": ALICE}) or {})["jobs"] == 3


async def test_a_counter_is_initialised_from_jobs_that_predate_it_and_recounted(
    make_api: Any,
) -> None:
    api: Api = await make_api(max_jobs_per_owner=3)
    await api.create(echo_job("a"))
    await api.create(echo_job("b"))
    # As if upgraded from a version without counters, or a crash left the counter off.
    await api.db[OWNER_QUOTAS].delete_many({})
    await api.create(echo_job("c"))
    assert (await api.request("POST", "/jobs", json=echo_job("d"))).status_code == 409
    await api.db[OWNER_QUOTAS].update_one({"_id": ALICE}, {"$set": {"jobs": 7}})
    await api.db[OWNER_QUOTAS].insert_one({"_id": "gone-owner", "jobs": 2})
    changes = await quota.recount(api.db)
    assert changes == [("alice-7c1e", 7, 3), ("gone-owner", 2, 0)]


# --- 5. the rate limit is shared by API processes ---------------------------------------------


async def test_two_api_instances_share_one_budget_per_owner(make_api: Any) -> None:
    first: Api = await make_api(rate_limit="4/minute")
    second: Api = await make_api(rate_limit="4/minute")
    statuses = []
    for index in range(6):
        app = first if index % 2 == 0 else second
        statuses.append((await app.request("GET", "/jobs")).status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert (await second.request("GET", "/jobs", sub=BOB)).status_code == 200


async def test_concurrent_requests_are_all_counted(make_api: Any) -> None:
    first: Api = await make_api(rate_limit="10/minute")
    second: Api = await make_api(rate_limit="10/minute")
    calls = [(first if i % 2 else second).request("GET", "/jobs") for i in range(30)]
    statuses = [response.status_code for response in await asyncio.gather(*calls)]
    assert statuses.count(200) == 10 and statuses.count(429) == 20


async def test_windows_end_by_their_stored_time_even_if_never_removed(api: Api) -> None:
    store = MongoRateLimitStore(api.db)
    start = 1_900_000_000.0
    counts = [(await store.hit("k", 60, now=start + offset)).count for offset in (0, 1, 59.9)]
    assert counts == [1, 2, 3]
    # The document is still there (no TTL monitor ran): the next window starts from 1 anyway.
    assert await api.db[RATE_LIMITS].count_documents({}) == 1
    later = await store.hit("k", 60, now=start + 60.5)
    assert (later.count, later.reset) == (1, 1_900_000_120)
    await store.set("value", b"x", expires_in=1)
    assert await store.get("value") == b"x"
    await api.db[RATE_LIMITS].update_one(
        {"_id": "value:value"}, {"$set": {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    assert await store.get("value") is None and not await store.exists("value")


# --- 6. only the documented payload names -----------------------------------------------------


@pytest.mark.parametrize(
    ("job_type", "payload", "field"),
    [
        ("noop", {"sleep_seconds": 1}, "payload.sleep_seconds"),
        ("noop", {"fail_attempts": 1}, "payload.fail_attempts"),
        ("purgeSessions", {"inactive_days": 30}, "payload.inactive_days"),
        ("generateReport", {"report_type": "jobRuns", "period": "daily"}, "payload.report_type"),
        ("httpRequest", {"url": "/hook", "timeout_seconds": 5}, "payload.timeout_seconds"),
    ],
)
async def test_python_names_of_payload_fields_are_refused(
    api: Api, job_type: str, payload: dict[str, Any], field: str
) -> None:
    body = {"name": "n", "type": job_type, "cron": "0 3 * * *", "payload": payload}
    response = await api.request("POST", "/jobs", ROOT, True, json=body)
    assert response.status_code == 422, response.text
    assert field in field_errors(response)
    assert await api.db[JOBS].count_documents({}) == 0


# --- 7. Location never comes from the request's Host --------------------------------------------


async def test_location_ignores_the_host_header(make_api: Any) -> None:
    api: Api = await make_api()
    hostile = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    response = await api.request("POST", "/jobs", json=echo_job(), headers=hostile)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/cron/jobs/{response.json()['id']}"

    public: Api = await make_api(public_base_url="https://cron.example.com/")
    response = await public.request("POST", "/jobs", json=echo_job("2"), headers=hostile)
    job_id = response.json()["id"]
    assert response.headers["Location"] == f"https://cron.example.com/api/cron/jobs/{job_id}"


# --- 9. If-Match is a strong comparison ---------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_weak_etag_never_satisfies_if_match(api: Api, method: str) -> None:
    job = await api.create(echo_job())
    before = await snapshot(api.db)
    body: dict[str, Any] = {"json": echo_job("renamed")} if method == "PUT" else {}
    if method == "PATCH":
        body = {"json": {"name": "renamed"}}
    response = await api.request(
        method, f"/jobs/{job['id']}", headers={"If-Match": 'W/"1"'}, **body
    )
    assert response.status_code == 412, response.text
    assert response.headers["ETag"] == '"1"'
    assert await snapshot(api.db) == before


# --- 2. a running job cannot queue runs -------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Cron-Signature", "X-Cron-Run-Id"])
async def test_run_now_from_a_running_job_is_409(api: Api, header: str) -> None:
    job = await api.create(echo_job(overlapPolicy="allow"))
    response = await api.request(
        "POST", f"/jobs/{job['id']}/run-now", headers={header: "t=1,v1=00"}
    )
    assert response.status_code == 409, response.text
    assert set(response.json()) == ERROR_SHAPE
    assert "sent by a running job" in response.json()["detail"]
    assert await api.db[RUNS].count_documents({"jobId": ObjectId(job["id"])}) == 0
