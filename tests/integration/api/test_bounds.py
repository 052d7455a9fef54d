"""Bounds (`startAt`, `endAt`, `maxRuns`) and one-off jobs (`runAt`) over HTTP: responses,
422s naming the field, nextRunAt and preview within the bounds, completed jobs and edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from shared.db import JOBS
from tests.integration.api.helpers import Api, echo_job, field_errors


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def soon(**delta: float) -> datetime:
    """A whole second in the future (bounds and instants are stored to the second)."""
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def one_off(at: datetime, **fields: Any) -> dict[str, Any]:
    body = echo_job(runAt=stamp(at), **fields)
    del body["cron"]
    return body


async def test_bounds_are_stored_and_returned_and_next_run_at_respects_start_at(api: Api) -> None:
    start, end = soon(days=2), soon(days=9)
    job = await api.create(echo_job(startAt=stamp(start), endAt=stamp(end), maxRuns=4))
    assert (parse_time(job["startAt"]), parse_time(job["endAt"])) == (start, end)
    assert (job["maxRuns"], job["scheduledSuccessCount"], job["runAt"]) == (4, 0, None)
    assert job["status"] == "idle"
    assert start <= parse_time(job["nextRunAt"]) < start + timedelta(minutes=5)
    read = (await api.request("GET", f"/jobs/{job['id']}")).json()
    assert (read["startAt"], read["endAt"], read["maxRuns"]) == (
        job["startAt"],
        job["endAt"],
        4,
    )


async def test_an_interval_is_anchored_at_start_at(api: Api) -> None:
    start = soon(hours=5)
    body = echo_job(every="PT90M", startAt=stamp(start))
    del body["cron"]
    job = await api.create(body)
    assert parse_time(job["anchorAt"]) == start
    assert parse_time(job["nextRunAt"]) == start
    moved = await api.request(
        "PATCH", f"/jobs/{job['id']}", json={"startAt": stamp(start + timedelta(minutes=7))}
    )
    assert parse_time(moved.json()["anchorAt"]) == start + timedelta(minutes=7)


async def test_a_one_off_job_has_run_at_as_its_only_slot(api: Api) -> None:
    at = soon(hours=3)
    job = await api.create(one_off(at, timezone="Europe/Berlin"))
    assert (job["cron"], job["every"], parse_time(job["runAt"])) == (None, None, at)
    assert parse_time(job["nextRunAt"]) == at
    assert job["status"] == "idle"
    back = await api.request("PATCH", f"/jobs/{job['id']}", json={"cron": "0 8 * * *"})
    assert back.status_code == 200, back.text
    assert (back.json()["runAt"], back.json()["cron"]) == (None, "0 8 * * *")
    again = await api.request("PATCH", f"/jobs/{job['id']}", json={"runAt": stamp(at)})
    assert (again.json()["cron"], parse_time(again.json()["runAt"])) == (None, at)


def _bad_bodies() -> list[tuple[dict[str, Any], str]]:
    later, past = soon(days=3), soon(days=-1)
    return [
        (echo_job(startAt=stamp(later), endAt=stamp(later - timedelta(days=1))), "endAt"),
        (echo_job(startAt=stamp(later), endAt=stamp(later)), "endAt"),
        (echo_job(endAt=stamp(past)), "endAt"),
        (echo_job(cron="0 8 1 1 *", endAt=stamp(soon(hours=1))), "endAt"),  # no slot before it
        (echo_job(maxRuns=0), "maxRuns"),
        (echo_job(maxRuns=-3), "maxRuns"),
        (echo_job(maxRuns="many"), "maxRuns"),
        (echo_job(startAt="2026-12-01T08:00:00"), "startAt"),  # naive
        (echo_job(endAt="2999-12-01 08:00"), "endAt"),
        (echo_job(runAt=stamp(later)), "runAt"),  # together with cron
        ({**one_off(later), "every": "PT1H"}, "runAt"),
        (one_off(past), "runAt"),
        ({**one_off(later), "runAt": "2030-01-01T08:00:00"}, "runAt"),
        ({**one_off(later), "endAt": stamp(later + timedelta(days=1))}, "endAt"),
        ({**one_off(later), "maxRuns": 2}, "maxRuns"),
    ]


@pytest.mark.parametrize("index", range(len(_bad_bodies())))
async def test_bad_bounds_are_422_naming_the_field(api: Api, index: int) -> None:
    body, field = _bad_bodies()[index]
    existing = await api.create(echo_job(name="target"))
    for method, path in (("POST", "/jobs"), ("PUT", f"/jobs/{existing['id']}")):
        response = await api.request(method, path, json=body)
        assert response.status_code == 422, (method, response.text)
        assert field in field_errors(response), (method, response.text)


async def test_patch_validates_bounds_and_null_clears_them(api: Api) -> None:
    job = await api.create(echo_job(endAt=stamp(soon(days=2)), maxRuns=3))
    path = f"/jobs/{job['id']}"
    past = await api.request("PATCH", path, json={"endAt": stamp(soon(days=-2))})
    assert set(field_errors(past)) == {"endAt"}
    order = await api.request("PATCH", path, json={"startAt": stamp(soon(days=5))})
    assert set(field_errors(order)) == {"endAt"}
    cleared = await api.request("PATCH", path, json={"endAt": None, "maxRuns": None})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["endAt"], cleared.json()["maxRuns"]) == (None, None)
    refused = await api.request("PATCH", path, json={"cron": None})
    assert set(field_errors(refused)) == {"cron"}  # only the bounds are cleared by null


async def _complete_as_the_worker_would(api: Api, job_id: str, **fields: Any) -> None:
    await api.db[JOBS].update_one(
        {"_id": ObjectId(job_id)},
        {"$set": {"status": "completed", "nextRunAt": None, **fields}},
    )


async def test_a_completed_job_stays_completed_until_an_edit_gives_it_slots(api: Api) -> None:
    job = await api.create(echo_job(maxRuns=2))
    path = f"/jobs/{job['id']}"
    await _complete_as_the_worker_would(api, job["id"], scheduledSuccessCount=2)
    renamed = await api.request("PATCH", path, json={"name": "still done"})
    assert (renamed.json()["status"], renamed.json()["nextRunAt"]) == ("completed", None)
    resumed = await api.request("PATCH", path, json={"enabled": True})
    assert resumed.json()["status"] == "completed"
    listed = await api.request("GET", "/jobs", params={"status": "completed"})
    assert [item["id"] for item in listed.json()["items"]] == [job["id"]]
    more = await api.request("PATCH", path, json={"maxRuns": 3})
    assert more.json()["status"] == "idle"
    assert more.json()["nextRunAt"] is not None
    fewer = await api.request("PATCH", path, json={"maxRuns": 1})
    assert (fewer.json()["status"], fewer.json()["nextRunAt"]) == ("completed", None)


async def test_a_stored_instant_in_the_past_does_not_block_other_edits(api: Api) -> None:
    job = await api.create(one_off(soon(hours=1)))
    path = f"/jobs/{job['id']}"
    gone = soon(hours=-1)
    await _complete_as_the_worker_would(api, job["id"], runAt=gone)
    renamed = await api.request("PATCH", path, json={"name": "ran once"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["status"] == "completed"
    body = {**one_off(gone), "name": "ran once, replaced"}
    replaced = await api.request("PUT", path, json=body)
    assert replaced.status_code == 200, replaced.text
    moved = await api.request("PATCH", path, json={"runAt": stamp(soon(hours=2))})
    assert (moved.json()["status"], moved.json()["nextRunAt"]) == ("idle", moved.json()["runAt"])


async def test_preview_respects_bounds_max_runs_and_run_at(api: Api) -> None:
    start = soon(days=1).replace(minute=0, second=0)
    bounded = await api.request(
        "POST",
        "/preview",
        json={
            "cron": "0 * * * *",
            "startAt": stamp(start + timedelta(minutes=30)),
            "endAt": stamp(start + timedelta(hours=3)),
            "count": 10,
        },
    )
    assert bounded.status_code == 200, bounded.text
    times = [parse_time(fire["utc"]) for fire in bounded.json()["fireTimes"]]
    assert times == [start + timedelta(hours=h) for h in (1, 2, 3)]
    limited = await api.request(
        "POST", "/preview", json={"cron": "0 * * * *", "maxRuns": 2, "count": 10}
    )
    assert len(limited.json()["fireTimes"]) == 2
    at = soon(hours=4)
    single = await api.request(
        "POST", "/preview", json={"runAt": stamp(at), "timezone": "Asia/Tokyo", "count": 5}
    )
    assert single.status_code == 200, single.text
    assert parse_time(single.json()["runAt"]) == at
    assert [parse_time(fire["utc"]) for fire in single.json()["fireTimes"]] == [at]
    late = await api.request("POST", "/preview", json={"runAt": stamp(soon(hours=-4))})
    assert set(field_errors(late)) == {"runAt"}
    anchored = await api.request(
        "POST", "/preview", json={"every": "PT2H", "startAt": stamp(at), "count": 2}
    )
    assert [parse_time(fire["utc"]) for fire in anchored.json()["fireTimes"]] == [
        at,
        at + timedelta(hours=2),
    ]


async def test_the_openapi_document_describes_the_new_fields(api: Api) -> None:
    document = (await api.request("GET", "/schema/openapi.json", sub=None)).json()
    schemas = document["components"]["schemas"]
    variant = next(name for name in schemas if name.startswith("JobCreate") and name != "JobCreate")
    properties = schemas[variant]["properties"]
    for field in ("runAt", "startAt", "endAt", "maxRuns"):
        assert properties[field].get("description") or any(
            "description" in option for option in properties[field].get("anyOf", [])
        ), field
    out = next(name for name in schemas if name.startswith("JobOut") and name != "JobOut")
    assert "scheduledSuccessCount" in schemas[out]["properties"]
    status = schemas[out]["properties"]["status"]
    if "$ref" in status:
        status = schemas[status["$ref"].rsplit("/", 1)[1]]
    assert "completed" in str(status)
