"""Owner isolation: another owner's job is 404 everywhere and never listed; admin powers."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from shared.db import JOBS
from tests.integration.api.helpers import ALICE, BOB, ROOT, Api, echo_job, noop_job, snapshot

# Every endpoint addressing one job, with a body that would succeed for the owner.
JOB_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PUT", "", echo_job("taken over")),
    ("PATCH", "", {"enabled": False}),
    ("DELETE", "", None),
    ("POST", "/run-now", None),
    ("GET", "/runs", None),
    ("GET", "/reports", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), JOB_ENDPOINTS)
async def test_another_owners_job_is_404_and_untouched(
    api: Api, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    alices = await api.create(echo_job())
    before = await snapshot(api.db)
    response = await api.request(method, f"/jobs/{alices['id']}{suffix}", sub=BOB, json=body)
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == "job not found"
    assert alices["id"] not in response.text
    assert await snapshot(api.db) == before
    # The same request by the owner succeeds: the 404 was about ownership only.
    mine = await api.request(method, f"/jobs/{alices['id']}{suffix}", sub=ALICE, json=body)
    assert mine.status_code in (200, 202, 204), mine.text


async def test_another_owners_job_answers_exactly_like_an_absent_one(api: Api) -> None:
    alices = await api.create(echo_job())
    for_bob = await api.request("GET", f"/jobs/{alices['id']}", sub=BOB)
    absent = await api.request("GET", "/jobs/6740a1f2c3d4e5f601234567", sub=BOB)
    assert (for_bob.status_code, for_bob.json()) == (absent.status_code, absent.json())


async def test_lists_only_contain_the_callers_jobs(api: Api) -> None:
    for index in range(3):
        await api.create(echo_job(f"a{index}"), sub=ALICE)
        await api.create(echo_job(f"b{index}"), sub=BOB)
    for sub in (ALICE, BOB):
        response = await api.request("GET", "/jobs", sub=sub, params={"limit": 200})
        owners = {job["ownerId"] for job in response.json()["items"]}
        assert owners == {sub}
        assert len(response.json()["items"]) == 3


async def test_a_non_admin_cannot_list_or_create_for_another_owner(api: Api) -> None:
    await api.create(echo_job(), sub=BOB)
    listing = await api.request("GET", "/jobs", sub=ALICE, params={"ownerId": BOB})
    assert listing.status_code == 403
    before = await snapshot(api.db)
    created = await api.request("POST", "/jobs", sub=ALICE, json=echo_job(ownerId=BOB))
    assert created.status_code == 403
    assert await snapshot(api.db) == before
    own = await api.request("POST", "/jobs", sub=ALICE, json=echo_job(ownerId=ALICE))
    assert own.status_code == 201


async def test_same_name_is_fine_for_different_owners(api: Api) -> None:
    await api.create(echo_job("digest"), sub=ALICE)
    await api.create(echo_job("digest"), sub=BOB)


async def test_admin_lists_everything_and_filters_by_owner(api: Api) -> None:
    alices = await api.create(echo_job("a"), sub=ALICE)
    bobs = await api.create(echo_job("b"), sub=BOB)
    everything = await api.request("GET", "/jobs", sub=ROOT, admin=True)
    assert [job["id"] for job in everything.json()["items"]] == [alices["id"], bobs["id"]]
    only_bob = await api.request("GET", "/jobs", sub=ROOT, admin=True, params={"ownerId": BOB})
    assert [job["id"] for job in only_bob.json()["items"]] == [bobs["id"]]


async def test_admin_reads_changes_and_deletes_any_job(api: Api) -> None:
    alices = await api.create(echo_job(), sub=ALICE)
    path = f"/jobs/{alices['id']}"
    assert (await api.request("GET", path, sub=ROOT, admin=True)).status_code == 200
    patched = await api.request("PATCH", path, sub=ROOT, admin=True, json={"enabled": False})
    assert patched.json()["ownerId"] == ALICE
    assert patched.json()["status"] == "paused"
    assert (await api.request("POST", f"{path}/run-now", sub=ROOT, admin=True)).status_code == 202
    assert (await api.request("DELETE", path, sub=ROOT, admin=True)).status_code == 204


async def test_admin_creates_for_another_owner_and_is_exempt_from_limits(make_api: Any) -> None:
    api: Api = await make_api(max_jobs_per_owner=1)
    every_second = noop_job("fast", ownerId=BOB)
    first = await api.create(every_second, sub=ROOT, admin=True)
    second = await api.create(noop_job("fast 2", ownerId=BOB), sub=ROOT, admin=True)
    assert first["ownerId"] == second["ownerId"] == BOB
    assert first["cron"] == "*/2 * * * * *"
    # Bob himself is over quota now: the admin's jobs count, only the admin is exempt.
    refused = await api.request("POST", "/jobs", sub=BOB, json=echo_job())
    assert refused.status_code == 409


async def test_admin_only_type_is_403_for_non_admins(api: Api) -> None:
    before = await snapshot(api.db)
    response = await api.request("POST", "/jobs", sub=ALICE, json=noop_job())
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert await snapshot(api.db) == before
    alices = await api.create(echo_job())
    for method in ("PUT", "PATCH"):
        body = noop_job() if method == "PUT" else {"type": "noop", "payload": {}}
        changed = await api.request(method, f"/jobs/{alices['id']}", json=body)
        assert changed.status_code == 403, changed.text
    stored = await api.request("GET", f"/jobs/{alices['id']}")
    assert stored.json()["type"] == "echo"
    assert stored.json()["version"] == 1


async def test_stored_payload_by_admin_records_who_last_validated_the_payload(api: Api) -> None:
    created = await api.create(echo_job(), sub=ALICE)
    path = f"/jobs/{created['id']}"
    # Server-owned: never shown, never writable.
    assert "payloadByAdmin" not in created
    forged = await api.request("POST", "/jobs", json=echo_job("forged", payloadByAdmin=True))
    assert forged.status_code == 422
    assert [error["field"] for error in forged.json()["errors"]] == ["payloadByAdmin"]
    steps: list[tuple[str, str, bool, dict[str, Any], bool]] = [
        ("PUT", ROOT, True, echo_job(), True),
        ("PATCH", ALICE, False, {"name": "renamed", "enabled": False}, True),  # payload kept
        ("PATCH", ALICE, False, {"payload": {"message": "mine"}}, False),
        ("PATCH", ROOT, True, {"type": "echo"}, True),  # same type, payload judged again
        ("PUT", ALICE, False, echo_job(), False),
        ("PATCH", ROOT, True, {"payload": {"message": "admin's"}}, True),
        ("PATCH", ROOT, True, {"timeoutSeconds": 9}, True),
    ]
    for method, sub, admin, body, expected in steps:
        response = await api.request(method, path, sub=sub, admin=admin, json=body)
        assert response.status_code == 200, (method, sub, body, response.text)
        assert "payloadByAdmin" not in response.json()
        stored = await api.db[JOBS].find_one({"_id": ObjectId(created["id"])})
        assert stored is not None
        assert stored["payloadByAdmin"] is expected, (method, sub, body)
    admins = await api.create(echo_job("admin's", ownerId=BOB), sub=ROOT, admin=True)
    stored = await api.db[JOBS].find_one({"_id": ObjectId(admins["id"])})
    assert stored is not None and stored["payloadByAdmin"] is True
    forged_patch = await api.request("PATCH", path, json={"payloadByAdmin": True})
    assert forged_patch.status_code == 422
