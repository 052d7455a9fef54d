"""Run history for app developers: filters, a pending retry's `notBefore`, history after delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from shared.db import RUNS
from tests.integration.api.helpers import ALICE, Api, echo_job, field_errors

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _run(
    job: dict[str, Any], hour: int, status: str, trigger: str, **fields: Any
) -> dict[str, Any]:
    scheduled = T0 + timedelta(hours=hour)
    return {
        "_id": ObjectId(),
        "jobId": ObjectId(job["id"]),
        "ownerId": job["ownerId"],
        "jobName": job["name"],
        "type": job["type"],
        "slot": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scheduledFor": scheduled,
        "trigger": trigger,
        "attempt": fields.pop("attempt", 1),
        "status": status,
        "createdAt": scheduled,
        **fields,
    }


async def _history(api: Api, job: dict[str, Any]) -> list[dict[str, Any]]:
    runs = [
        _run(job, 0, "succeeded", "schedule", endedAt=T0),
        _run(job, 1, "failed", "schedule", endedAt=T0),
        _run(job, 1, "pending", "retry", attempt=2, notBefore=T0 + timedelta(hours=1, minutes=5)),
        _run(job, 2, "timeout", "manual", endedAt=T0),
        _run(job, 3, "succeeded", "manual", endedAt=T0),
    ]
    await api.db[RUNS].insert_many(runs)
    return runs


async def _ids(api: Api, job: dict[str, Any], query: str) -> list[str]:
    response = await api.request("GET", f"/jobs/{job['id']}/runs?{query}")
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["items"]]


async def test_runs_filter_by_status_trigger_and_time(api: Api) -> None:
    job = await api.create(echo_job())
    runs = await _history(api, job)
    ids = [str(run["_id"]) for run in runs]
    assert await _ids(api, job, "") == ids[::-1]
    assert await _ids(api, job, "status=failed&status=timeout") == [ids[3], ids[1]]
    assert await _ids(api, job, "trigger=manual") == [ids[4], ids[3]]
    assert await _ids(api, job, "trigger=manual&status=succeeded") == [ids[4]]
    since, until = "2026-03-01T09:00:00Z", "2026-03-01T11:00:00%2B01:00"  # 10:00 UTC
    assert await _ids(api, job, f"since={since}&until={until}") == [ids[2], ids[1]]
    page = await api.request("GET", f"/jobs/{job['id']}/runs?trigger=schedule&limit=1")
    assert page.json()["nextCursor"] == ids[1]
    rest = await _ids(api, job, f"trigger=schedule&cursor={ids[1]}")
    assert rest == [ids[0]]


async def test_bad_filters_name_the_parameter(api: Api) -> None:
    job = await api.create(echo_job())
    response = await api.request("GET", f"/jobs/{job['id']}/runs?status=done&since=yesterday")
    assert response.status_code == 422
    assert set(field_errors(response)) == {"status", "since"}
    naive = await api.request("GET", f"/jobs/{job['id']}/runs?since=2026-03-01T09:00:00")
    assert field_errors(naive) == {"since": "must include a UTC offset, e.g. 2026-11-23T07:00:00Z"}


async def test_a_pending_retry_shows_when_it_will_run(api: Api) -> None:
    job = await api.create(echo_job())
    await _history(api, job)
    items = (await api.request("GET", f"/jobs/{job['id']}/runs")).json()["items"]
    by_status = {run["status"]: run for run in items}
    assert by_status["pending"]["notBefore"] == "2026-03-01T09:05:00Z"
    assert by_status["pending"]["trigger"] == "retry"
    assert by_status["failed"]["notBefore"] is None


async def test_history_of_a_deleted_job_stays_readable_by_its_owner(api: Api) -> None:
    job = await api.create(echo_job())
    runs = await _history(api, job)
    deleted = await api.request("DELETE", f"/jobs/{job['id']}")
    assert deleted.status_code == 204
    assert (await api.request("GET", f"/jobs/{job['id']}")).status_code == 404

    items = (await api.request("GET", f"/jobs/{job['id']}/runs", sub=ALICE)).json()["items"]
    assert [run["id"] for run in items] == [str(run["_id"]) for run in runs][::-1]
    # The queued retry was skipped by the delete.
    assert {run["status"] for run in items} >= {"skipped"}
    skipped = await _ids(api, job, "status=skipped")
    assert skipped == [str(runs[2]["_id"])]
    assert (await api.request("GET", f"/jobs/{job['id']}/runs", admin=True)).status_code == 200
    other = await api.request("GET", f"/jobs/{job['id']}/runs", sub="mallory")
    assert other.status_code == 404
    unknown = await api.request("GET", f"/jobs/{ObjectId()}/runs")
    assert unknown.status_code == 404
