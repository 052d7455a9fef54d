"""Each endpoint's success path over HTTP, against the local database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from shared.db import JOBS, REPORTS, RUNS
from shared.model import RunStatus
from tests.integration.api.helpers import ALICE, ROOT, Api, echo_job, noop_job
from tests.unit.api.echo import CRASH_MESSAGE

JOB_FIELDS = {
    "id", "ownerId", "name", "type", "cron", "every", "anchorAt", "timezone", "payload",
    "enabled", "status",
    "nextRunAt", "lastRunAt", "lastError", "lastDurationMs", "runCount", "failureCount",
    "version", "createdAt", "updatedAt", "retry", "timeoutSeconds", "overlapPolicy",
    "misfirePolicy", "misfireGraceSeconds", "jitterSeconds",
    "runAt", "startAt", "endAt", "maxRuns", "scheduledSuccessCount",
    "notify", "pauseAfterFailures", "pausedReason", "failureStreak", "lastNotification",
}  # fmt: skip


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_create_returns_the_job_with_location_and_etag(api: Api) -> None:
    before = datetime.now(UTC)
    response = await api.request(
        "POST",
        "/jobs",
        json=echo_job(cron="0 8 * * *", timezone="Europe/Berlin", retry={"maxAttempts": 2}),
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert response.headers["ETag"] == '"1"'
    # A relative reference: the client's Host header never makes it into the answer.
    assert response.headers["Location"] == f"/api/cron/jobs/{job['id']}"
    assert job["ownerId"] == ALICE
    assert job["status"] == "idle"
    assert job["version"] == 1
    assert job["retry"] == {"maxAttempts": 2, "backoffSeconds": 10.0, "backoffMaxSeconds": 600.0}
    assert job["timeoutSeconds"] == api.settings.default_timeout_seconds
    next_run = parse_time(job["nextRunAt"])
    assert before < next_run <= before + timedelta(days=1, hours=1)
    assert next_run.astimezone(ZoneInfo("Europe/Berlin")).hour == 8
    stored = await api.db[JOBS].find_one({"_id": ObjectId(job["id"])})
    assert stored is not None
    assert stored["ownerId"] == ALICE
    assert stored["activeRunIds"] == []
    assert stored["nextRunAt"] == next_run


async def test_create_disabled_job_is_paused_without_next_run(api: Api) -> None:
    job = await api.create(echo_job(enabled=False))
    assert job["status"] == "paused"
    assert job["nextRunAt"] is None


async def test_get_returns_the_job_and_etag(api: Api) -> None:
    created = await api.create(echo_job())
    response = await api.request("GET", f"/jobs/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == '"1"'


async def test_list_pages_through_jobs_in_stable_order(api: Api) -> None:
    ids = [(await api.create(echo_job(f"job {index}")))["id"] for index in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await api.request("GET", "/jobs", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [job["id"] for job in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3


async def test_list_filters_by_enabled_type_and_status(api: Api) -> None:
    active = await api.create(echo_job("active"))
    paused = await api.create(echo_job("paused", enabled=False))

    async def ids(**params: object) -> list[str]:
        response = await api.request("GET", "/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["items"]]

    assert await ids(enabled="false") == [paused["id"]]
    assert await ids(enabled="true") == [active["id"]]
    assert await ids(status="paused") == [paused["id"]]
    assert await ids(type="echo") == [active["id"], paused["id"]]
    assert await ids(type="noop") == []


async def test_put_replaces_the_job_and_recomputes_next_run(api: Api) -> None:
    created = await api.create(echo_job(cron="0 8 * * *", payload={"message": "a", "count": 3}))
    body = echo_job("renamed", cron="30 9 * * *", payload={"message": "b"})
    response = await api.request("PUT", f"/jobs/{created['id']}", json=body)
    assert response.status_code == 200, response.text
    job = response.json()
    assert response.headers["ETag"] == '"2"'
    assert (job["name"], job["cron"], job["payload"]) == ("renamed", "30 9 * * *", {"message": "b"})
    assert parse_time(job["nextRunAt"]).strftime("%H:%M") == "09:30"
    assert job["createdAt"] == created["createdAt"]
    assert job["updatedAt"] > created["updatedAt"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_timezone_only_change_recomputes_next_run(api: Api, method: str) -> None:
    created = await api.create(echo_job(cron="0 9 * * *"))
    assert parse_time(created["nextRunAt"]).strftime("%H:%M") == "09:00"
    whole = echo_job(cron="0 9 * * *", timezone="Asia/Tokyo")
    body = whole if method == "PUT" else {"timezone": "Asia/Tokyo"}
    response = await api.request(method, f"/jobs/{created['id']}", json=body)
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["cron"], job["timezone"], job["version"]) == ("0 9 * * *", "Asia/Tokyo", 2)
    # 09:00 in Tokyo (UTC+9, no DST) is midnight UTC.
    next_run = parse_time(job["nextRunAt"])
    assert next_run.strftime("%H:%M") == "00:00"
    assert next_run.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") == "09:00"
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(days=1)
    stored = await api.db[JOBS].find_one({"_id": ObjectId(created["id"])})
    assert stored is not None and stored["nextRunAt"] == next_run


async def test_put_with_identical_body_changes_nothing(api: Api) -> None:
    created = await api.create(echo_job())
    response = await api.request("PUT", f"/jobs/{created['id']}", json=echo_job())
    assert response.status_code == 200
    assert response.json() == created


async def test_patch_pauses_and_resumes(api: Api) -> None:
    created = await api.create(echo_job())
    paused = await api.request("PATCH", f"/jobs/{created['id']}", json={"enabled": False})
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["nextRunAt"] is None
    assert paused.json()["version"] == 2
    resumed = await api.request("PATCH", f"/jobs/{created['id']}", json={"enabled": True})
    assert resumed.json()["status"] == "idle"
    assert resumed.json()["nextRunAt"] is not None
    assert resumed.headers["ETag"] == '"3"'


async def test_patch_changes_only_the_sent_fields(api: Api) -> None:
    created = await api.create(echo_job(payload={"message": "x", "count": 2}))
    response = await api.request(
        "PATCH", f"/jobs/{created['id']}", json={"name": "new name", "timeoutSeconds": 5}
    )
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["name"], job["timeoutSeconds"]) == ("new name", 5)
    assert job["payload"] == created["payload"]
    # The schedule did not change, so the stored next slot stays put.
    assert job["nextRunAt"] == created["nextRunAt"]


async def test_delete_removes_the_job_and_skips_its_pending_runs(api: Api) -> None:
    created = await api.create(echo_job())
    queued = await api.request("POST", f"/jobs/{created['id']}/run-now")
    assert queued.status_code == 202
    response = await api.request("DELETE", f"/jobs/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert await api.db[JOBS].count_documents({}) == 0
    run = await api.db[RUNS].find_one({"_id": ObjectId(queued.json()["runId"])})
    assert run is not None
    assert (run["status"], run["error"]) == ("skipped", "job deleted")
    assert run["endedAt"] is not None
    again = await api.request("GET", f"/jobs/{created['id']}")
    assert again.status_code == 404


async def test_run_now_queues_a_pending_manual_run(api: Api) -> None:
    created = await api.create(echo_job())
    response = await api.request("POST", f"/jobs/{created['id']}/run-now")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["jobId"] == created["id"]
    assert body["status"] == "pending"
    run = await api.db[RUNS].find_one({"_id": ObjectId(body["runId"])})
    assert run is not None
    assert run["trigger"] == "manual"
    assert run["slot"] == f"manual:{body['runId']}"
    assert (run["attempt"], run["status"], run["ownerId"]) == (1, "pending", ALICE)
    assert run["notBefore"] == run["scheduledFor"] == run["createdAt"]
    job = await api.request("GET", f"/jobs/{created['id']}")
    assert job.json()["nextRunAt"] == created["nextRunAt"]


async def test_run_now_works_on_a_paused_job(api: Api) -> None:
    created = await api.create(echo_job(enabled=False))
    response = await api.request("POST", f"/jobs/{created['id']}/run-now")
    assert response.status_code == 202


async def test_run_now_refuses_overlap_when_the_job_is_running(api: Api) -> None:
    created = await api.create(echo_job())
    job_id = ObjectId(created["id"])
    await api.db[JOBS].update_one({"_id": job_id}, {"$addToSet": {"activeRunIds": ObjectId()}})
    response = await api.request("POST", f"/jobs/{created['id']}/run-now")
    assert response.status_code == 409
    allowing = await api.create(echo_job("overlapping", overlapPolicy="allow"))
    await api.db[JOBS].update_one(
        {"_id": ObjectId(allowing["id"])}, {"$addToSet": {"activeRunIds": ObjectId()}}
    )
    assert (await api.request("POST", f"/jobs/{allowing['id']}/run-now")).status_code == 202


async def test_run_now_refuses_a_second_queued_run_when_overlap_is_skip(api: Api) -> None:
    created = await api.create(echo_job())
    first = await api.request("POST", f"/jobs/{created['id']}/run-now")
    second = await api.request("POST", f"/jobs/{created['id']}/run-now")
    assert (first.status_code, second.status_code) == (202, 409)


async def test_runs_are_listed_newest_first_with_pagination(api: Api) -> None:
    created = await api.create(echo_job())
    job_id = ObjectId(created["id"])
    now = datetime.now(UTC).replace(microsecond=0)
    run_ids = [ObjectId() for _ in range(3)]
    await api.db[RUNS].insert_many(
        [
            {
                "_id": run_id,
                "jobId": job_id,
                "ownerId": ALICE,
                "jobName": created["name"],
                "type": "echo",
                "slot": f"2026-01-0{index + 1}T00:00:00Z",
                "scheduledFor": now,
                "trigger": "schedule",
                "attempt": 1,
                "status": RunStatus.SUCCEEDED.value,
                "createdAt": now,
                "startedAt": now,
                "endedAt": now,
                "durationMs": 12,
                "workerId": "w1",
                "result": {"ok": True},
            }
            for index, run_id in enumerate(run_ids)
        ]
    )
    first = await api.request("GET", f"/jobs/{created['id']}/runs", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [run["id"] for run in page["items"]] == [str(run_ids[2]), str(run_ids[1])]
    assert set(page["items"][0]) == {
        "id", "jobId", "scheduledFor", "trigger", "attempt", "status", "notBefore", "startedAt",
        "endedAt", "durationMs", "error", "result", "workerId", "missedCount",
    }  # fmt: skip
    assert page["items"][0]["result"] == {"ok": True}
    second = await api.request(
        "GET", f"/jobs/{created['id']}/runs", params={"limit": 2, "cursor": page["nextCursor"]}
    )
    assert [run["id"] for run in second.json()["items"]] == [str(run_ids[0])]
    assert second.json()["nextCursor"] is None


async def test_reports_are_listed_for_the_owner(api: Api) -> None:
    created = await api.create(echo_job())
    job_id = ObjectId(created["id"])
    now = datetime.now(UTC).replace(microsecond=0)
    report = {
        "ownerId": ALICE,
        "jobId": job_id,
        "runId": ObjectId(),
        "type": "jobRuns",
        "period": "daily",
        "periodStart": now - timedelta(days=1),
        "periodEnd": now,
        "timezone": "UTC",
        "data": {"totals": {"attempts": 3}},
        "createdAt": now,
    }
    older = await api.db[REPORTS].insert_one(dict(report))
    newer = await api.db[REPORTS].insert_one(dict(report, period="weekly"))
    response = await api.request("GET", f"/jobs/{created['id']}/reports")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["id"] for item in items] == [str(newer.inserted_id), str(older.inserted_id)]
    assert items[1]["data"] == {"totals": {"attempts": 3}}
    assert items[1]["periodEnd"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_job_types_expose_schemas_and_admin_flags(api: Api) -> None:
    response = await api.request("GET", "/job-types")
    assert response.status_code == 200
    types = {item["name"]: item for item in response.json()["items"]}
    assert types["noop"]["adminOnly"] is True
    assert types["echo"]["adminOnly"] is False
    assert "sleepSeconds" in types["noop"]["payloadSchema"]["properties"]
    assert types["echo"]["description"] == "Test type: echoes a message."


async def test_preview_lists_utc_and_local_fire_times(api: Api) -> None:
    response = await api.request(
        "POST", "/preview", json={"cron": "0 8 * * *", "timezone": "America/New_York", "count": 3}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["fireTimes"]) == 3
    for fire in body["fireTimes"]:
        local = datetime.fromisoformat(fire["local"])
        assert local.hour == 8
        assert local == parse_time(fire["utc"])


async def test_admin_creates_a_noop_job_for_another_owner(api: Api) -> None:
    job = await api.create(noop_job(ownerId=ALICE), sub=ROOT, admin=True)
    assert job["ownerId"] == ALICE
    seen = await api.request("GET", f"/jobs/{job['id']}")
    assert seen.status_code == 200


async def test_health_endpoints_need_no_token(api: Api) -> None:
    assert (await api.request("GET", "/healthz", sub=None)).json() == {"status": "ok"}
    ready = await api.request("GET", "/readyz", sub=None)
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


async def test_openapi_document_is_served_without_a_token(api: Api) -> None:
    response = await api.request("GET", "/schema/openapi.json", sub=None)
    assert response.status_code == 200
    document = response.json()
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    create = document["paths"]["/api/cron/jobs"]["post"]
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert document["paths"]["/api/cron/healthz"]["get"]["security"] == [{}]


async def test_readyz_is_503_when_the_database_is_unreachable(make_api: Any) -> None:
    api: Api = await make_api(
        mongodb_uri="mongodb://127.0.0.1:9/?directConnection=true", mongodb_timeout_ms=300
    )
    ready = await api.request("GET", "/readyz", sub=None)
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
    assert (await api.request("GET", "/healthz", sub=None)).status_code == 200
    # Data endpoints say "retry later" without leaking internals.
    broken = await api.request("GET", "/jobs")
    assert broken.status_code == 503
    assert broken.headers["Retry-After"] == "5"
    assert broken.json() == {
        "status": 503,
        "title": "Service Unavailable",
        "detail": "the database is unavailable; retry later",
        "errors": [],
    }


async def test_unexpected_errors_are_500_without_internals(api: Api) -> None:
    response = await api.request("POST", "/jobs", json=echo_job(payload={"message": CRASH_MESSAGE}))
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error; it has been logged"
    assert "secret" not in response.text
