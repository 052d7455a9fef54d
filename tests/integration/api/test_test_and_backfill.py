"""`POST /jobs/{id}/test` (owner or admin) and `POST /jobs/{id}/backfill` (admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared.backfill import MAX_BACKFILL_SLOTS
from shared.db import JOBS, RUNS
from tests.integration.api.helpers import ALICE, BOB, ROOT, Api, echo_job, field_errors, noop_job

# A yearly job: its past slots are on 1 January, its nextRunAt far away and stable.
YEARLY = echo_job("yearly", cron="0 6 1 1 *")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_a_test_run_is_queued_with_its_own_trigger_and_leaves_the_job_as_it_was(
    api: Api,
) -> None:
    created = await api.create(echo_job())
    response = await api.request("POST", f"/jobs/{created['id']}/test")
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["jobId"], body["status"]) == (created["id"], "pending")
    run = await api.db[RUNS].find_one({"_id": ObjectId(body["runId"])})
    assert run is not None
    assert (run["trigger"], run["slot"], run["status"]) == (
        "test",
        f"test:{body['runId']}",
        "pending",
    )
    assert run["notBefore"] == run["scheduledFor"] == run["createdAt"]
    after = (await api.request("GET", f"/jobs/{created['id']}")).json()
    assert after == created
    listed = await api.request("GET", f"/jobs/{created['id']}/runs", params={"trigger": "test"})
    assert [item["id"] for item in listed.json()["items"]] == [body["runId"]]


async def test_only_the_owner_or_an_admin_may_test_a_job(api: Api) -> None:
    created = await api.create(echo_job(overlapPolicy="allow"))
    path = f"/jobs/{created['id']}/test"
    assert (await api.request("POST", path, BOB)).status_code == 404
    assert (await api.request("POST", path, ROOT, admin=True)).status_code == 202
    assert (await api.request("POST", path, None)).status_code == 401
    # An admin-only type created for alice: she may not test it.
    canary = await api.create(noop_job(ownerId=ALICE), ROOT, admin=True)
    refused = await api.request("POST", f"/jobs/{canary['id']}/test")
    assert refused.status_code == 403
    assert field_errors(refused) == {}


async def test_a_test_run_shares_run_nows_overlap_rules_and_runs_a_paused_job(api: Api) -> None:
    created = await api.create(echo_job(enabled=False))
    first = await api.request("POST", f"/jobs/{created['id']}/test")
    again = await api.request("POST", f"/jobs/{created['id']}/test")
    run_now = await api.request("POST", f"/jobs/{created['id']}/run-now")
    assert (first.status_code, again.status_code, run_now.status_code) == (202, 409, 409)
    from_a_job = await api.request(
        "POST", f"/jobs/{created['id']}/test", headers={"X-Cron-Run-Id": str(ObjectId())}
    )
    assert from_a_job.status_code == 409


async def backfill(api: Api, job_id: str, start: Any, end: Any, **kwargs: Any) -> Any:
    body = {"from": start, "to": end}
    return await api.request(
        "POST", f"/jobs/{job_id}/backfill", ROOT, admin=True, json=body, **kwargs
    )


async def test_a_backfill_queues_each_slot_once_however_often_it_is_asked(api: Api) -> None:
    created = await api.create(YEARLY)
    start, end = "2023-06-01T00:00:00Z", "2026-06-01T00:00:00+02:00"
    first = await backfill(api, created["id"], start, end)
    assert first.status_code == 202, first.text
    assert first.json() == {"jobId": created["id"], "slots": 3, "queued": 3, "alreadyPresent": 0}
    # Again, and overlapping: only the slot not queued before goes in.
    again = await backfill(api, created["id"], start, end)
    assert again.json() == {"jobId": created["id"], "slots": 3, "queued": 0, "alreadyPresent": 3}
    wider = await backfill(api, created["id"], "2022-06-01T00:00:00Z", end)
    assert wider.json()["queued"] == 1 and wider.json()["alreadyPresent"] == 3
    runs = (
        await api.db[RUNS]
        .find({"jobId": ObjectId(created["id"])})
        .sort("scheduledFor", 1)
        .to_list()
    )
    assert [run["scheduledFor"] for run in runs] == [
        datetime(year, 1, 1, 6, tzinfo=UTC) for year in (2023, 2024, 2025, 2026)
    ]
    assert {(run["trigger"], run["status"], run["attempt"]) for run in runs} == {
        ("backfill", "pending", 1)
    }
    assert runs[0]["slot"] == "backfill:2023-01-01T06:00:00Z"
    job = (await api.request("GET", f"/jobs/{created['id']}")).json()
    assert (job["nextRunAt"], job["version"]) == (created["nextRunAt"], created["version"])


async def test_a_backfill_takes_at_most_1000_slots(api: Api) -> None:
    created = await api.create(echo_job("minutely", cron="* * * * *"))
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(minutes=MAX_BACKFILL_SLOTS)
    too_many = await backfill(api, created["id"], iso(start), iso(end + timedelta(minutes=1)))
    assert too_many.status_code == 422
    assert "more than 1000 slots" in field_errors(too_many)["to"]
    assert await api.db[RUNS].count_documents({}) == 0
    exact = await backfill(api, created["id"], iso(start), iso(end))
    assert exact.status_code == 202, exact.text
    assert exact.json()["queued"] == MAX_BACKFILL_SLOTS
    assert await api.db[RUNS].count_documents({"trigger": "backfill"}) == MAX_BACKFILL_SLOTS


async def test_unusable_windows_are_422_naming_the_field(api: Api) -> None:
    created = await api.create(YEARLY)
    now = datetime.now(UTC)
    past, future = iso(now - timedelta(days=400)), iso(now + timedelta(days=1))
    cases = [
        ((past, future), "to"),  # ends in the future
        ((future, iso(now + timedelta(days=2))), "from"),  # wholly in the future
        ((past, iso(now - timedelta(days=500))), "to"),  # backwards
        ((past, past), "to"),  # empty
        (("2024-01-01T00:00:00", past), "from"),  # no offset
        ((past, "yesterday"), "to"),
    ]
    for (start, end), field in cases:
        response = await backfill(api, created["id"], start, end)
        assert response.status_code == 422, (start, end, response.text)
        assert field in field_errors(response), (start, end, response.json())
    missing = await api.request(
        "POST", f"/jobs/{created['id']}/backfill", ROOT, admin=True, json={"to": past}
    )
    assert missing.status_code == 422 and "from" in field_errors(missing)
    assert await api.db[RUNS].count_documents({}) == 0


async def test_only_admins_may_backfill(api: Api) -> None:
    created = await api.create(YEARLY)
    body = {"from": "2024-06-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}
    refused = await api.request("POST", f"/jobs/{created['id']}/backfill", ALICE, json=body)
    assert refused.status_code == 403
    assert field_errors(refused) == {}
    assert "admins" in refused.json()["detail"]
    # Even an invalid window is refused for the right reason first.
    odd = await api.request("POST", f"/jobs/{created['id']}/backfill", ALICE, json={})
    assert odd.status_code == 403
    assert await api.db[RUNS].count_documents({}) == 0
    missing = await backfill(api, str(ObjectId()), body["from"], body["to"])
    assert missing.status_code == 404


async def test_a_paused_job_is_not_backfilled(api: Api) -> None:
    created = await api.create(echo_job("paused yearly", cron="0 6 1 1 *", enabled=False))
    response = await backfill(api, created["id"], "2024-06-01T00:00:00Z", "2025-06-01T00:00:00Z")
    assert response.status_code == 409
    assert "resume" in response.json()["detail"]
    await api.db[JOBS].update_one({"_id": ObjectId(created["id"])}, {"$set": {"enabled": True}})
    assert (
        await backfill(api, created["id"], "2024-06-01T00:00:00Z", "2025-06-01T00:00:00Z")
    ).status_code == 202
