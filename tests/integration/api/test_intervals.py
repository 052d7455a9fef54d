"""Interval jobs over HTTP: create, validation (422 naming the field), switching kinds,
run history of a resume, preview with an anchor across a DST change, the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.api.helpers import ROOT, Api, echo_job, field_errors, noop_job

BERLIN = ZoneInfo("Europe/Berlin")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def interval_job(**fields: Any) -> dict[str, Any]:
    body = echo_job(every="PT90M", timezone="Europe/Berlin", **fields)
    del body["cron"]
    return body


async def test_an_interval_job_is_anchored_at_its_creation(api: Api) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    job = await api.create(interval_job())
    assert (job["cron"], job["every"], job["timezone"]) == (None, "PT90M", "Europe/Berlin")
    anchor = parse_time(job["anchorAt"])
    assert before <= anchor <= parse_time(job["createdAt"])
    assert anchor.microsecond == 0
    assert parse_time(job["nextRunAt"]) == anchor + timedelta(minutes=90)
    listed = await api.request("GET", "/jobs")
    assert [item["every"] for item in listed.json()["items"]] == ["PT90M"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"every": None}, "cron"),  # neither `cron` nor `every`
        ({"cron": "0 8 * * *"}, "every"),  # both
        ({"every": "P1M"}, "every"),  # months vary in length
        ({"every": "P1Y"}, "every"),
        ({"every": "PT0S"}, "every"),
        ({"every": "-PT1H"}, "every"),
        ({"every": "PT1.5H"}, "every"),
        ({"every": "90 minutes"}, "every"),
        ({"every": "PT" + "9" * 37 + "H"}, "every"),  # huge: no overflow, a 422
        ({"every": "PT30S"}, "every"),  # seconds: admins only
        ({"every": 90}, "every"),
        ({"anchorAt": "2026-01-01T00:00:00Z"}, "anchorAt"),  # server-owned
    ],
)
async def test_a_bad_schedule_is_422_naming_the_field(
    api: Api, fields: dict[str, Any], field: str
) -> None:
    body = {**interval_job(), **fields}
    if fields.get("every", "") is None:
        del body["every"]
    existing = await api.create(echo_job(name="target"))
    for method, path in (("POST", "/jobs"), ("PUT", f"/jobs/{existing['id']}")):
        response = await api.request(method, path, json=body)
        assert response.status_code == 422, (method, response.text)
        assert field in field_errors(response), (method, response.text)


async def test_admins_may_use_seconds(api: Api) -> None:
    job = await api.create({**noop_job(), "cron": None, "every": "PT30S"}, sub=ROOT, admin=True)
    assert job["every"] == "PT30S"


async def test_patch_switches_the_kind_and_moves_the_anchor(api: Api) -> None:
    job = await api.create(echo_job())
    path = f"/jobs/{job['id']}"
    to_interval = await api.request("PATCH", path, json={"every": "pt2h"})
    assert to_interval.status_code == 200, to_interval.text
    body = to_interval.json()
    assert (body["cron"], body["every"]) == (None, "PT2H")
    anchor = parse_time(body["anchorAt"])
    assert parse_time(body["nextRunAt"]) == anchor + timedelta(hours=2)
    same = await api.request("PATCH", path, json={"name": "renamed"})
    assert same.json()["anchorAt"] == body["anchorAt"]  # other edits keep the grid
    both = await api.request("PATCH", path, json={"every": "PT3H", "cron": "0 9 * * *"})
    assert set(field_errors(both)) == {"every"}
    bad = await api.request("PATCH", path, json={"every": "P1M"})
    assert set(field_errors(bad)) == {"every"}
    null = await api.request("PATCH", path, json={"every": None})
    assert set(field_errors(null)) == {"every"}
    to_cron = await api.request("PATCH", path, json={"cron": "0 9 * * *"})
    assert to_cron.status_code == 200, to_cron.text
    assert (to_cron.json()["every"], to_cron.json()["anchorAt"]) == (None, None)


async def test_a_missing_schedule_is_refused_on_put(api: Api) -> None:
    job = await api.create(interval_job())
    body = interval_job()
    del body["every"]
    response = await api.request("PUT", f"/jobs/{job['id']}", json=body)
    assert set(field_errors(response)) == {"cron"}
    assert "`cron` or `every`" in field_errors(response)["cron"]


def _spring_forward_after(moment: datetime) -> datetime:
    """The next spring-forward instant of Europe/Berlin after `moment` (to the hour)."""
    probe = moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while probe.astimezone(BERLIN).utcoffset() == (probe + timedelta(hours=1)).astimezone(
        BERLIN
    ).utcoffset() or probe.astimezone(BERLIN).dst() != timedelta(0):
        probe += timedelta(hours=1)
    return probe + timedelta(hours=1)


async def test_preview_of_an_interval_stays_evenly_spaced_across_a_dst_change(api: Api) -> None:
    change = _spring_forward_after(datetime.now(UTC))
    anchor = change - timedelta(hours=3)
    response = await api.request(
        "POST",
        "/preview",
        json={
            "every": "PT90M",
            "anchorAt": anchor.isoformat().replace("+00:00", "Z"),
            "timezone": "Europe/Berlin",
            "count": 5,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["cron"], body["every"], parse_time(body["anchorAt"])) == (None, "PT90M", anchor)
    utc = [parse_time(fire["utc"]) for fire in body["fireTimes"]]
    assert utc[0] == anchor  # a future anchor is the first slot
    assert {later - earlier for earlier, later in pairwise(utc)} == {timedelta(minutes=90)}
    local = [datetime.fromisoformat(fire["local"]) for fire in body["fireTimes"]]
    assert [moment.utcoffset() for moment in local] == [timedelta(hours=1)] * 2 + [
        timedelta(hours=2)
    ] * 3
    assert local == utc


async def test_preview_of_an_interval_defaults_to_an_anchor_of_now(api: Api) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = await api.request("POST", "/preview", json={"every": "PT2H", "count": 2})
    assert response.status_code == 200, response.text
    anchor = parse_time(response.json()["anchorAt"])
    assert anchor >= before
    times = [parse_time(fire["utc"]) for fire in response.json()["fireTimes"]]
    assert times == [anchor + timedelta(hours=2), anchor + timedelta(hours=4)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"every": "PT30S"}, "every"),
        ({"every": "P1M"}, "every"),
        ({"every": "PT1H", "cron": "0 8 * * *"}, "every"),
        ({}, "cron"),
        ({"cron": "0 8 * * *", "anchorAt": "2026-01-01T00:00:00Z"}, "anchorAt"),
    ],
)
async def test_preview_validates_an_interval_like_a_save(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.request("POST", "/preview", json=body)
    assert response.status_code == 422, response.text
    assert set(field_errors(response)) == {field}


async def test_preview_of_seconds_is_for_admins(api: Api) -> None:
    response = await api.request(
        "POST", "/preview", sub=ROOT, admin=True, json={"every": "PT30S", "count": 3}
    )
    assert response.status_code == 200, response.text


async def test_the_openapi_document_describes_every(api: Api) -> None:
    response = await api.request("GET", "/schema/openapi.json", sub=None)
    schemas = response.json()["components"]["schemas"]
    # JobCreate / JobOut are unions discriminated by `type`: every variant has the fields.
    creates = [s for n, s in schemas.items() if n.startswith("JobCreate") and "properties" in s]
    outs = [s for n, s in schemas.items() if n.startswith("JobOut") and "properties" in s]
    assert creates
    assert outs
    for create in creates:
        assert "every" in create["properties"]
        assert "cron" not in create.get("required", [])
        assert "PT90M" in str(create["properties"]["every"])
    for job_out in outs:
        assert {"every", "anchorAt", "cron"} <= set(job_out["properties"])


@pytest.mark.parametrize(
    "anchor",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:30:00Z",
        "1969-12-31T23:59:59Z",
        "2026-11-23T07:00:00",  # no offset
    ],
)
async def test_preview_refuses_anchors_out_of_range(api: Api, anchor: str) -> None:
    response = await api.request(
        "POST", "/preview", json={"every": "PT1H", "anchorAt": anchor, "timezone": "Asia/Tokyo"}
    )
    assert set(field_errors(response)) == {"anchorAt"}, response.text


async def test_run_now_and_pause_resume_of_an_interval_job_keep_its_grid(api: Api) -> None:
    job = await api.create(interval_job())
    path = f"/jobs/{job['id']}"
    queued = await api.request("POST", f"{path}/run-now")
    assert queued.status_code == 202, queued.text
    paused = await api.request("PATCH", path, json={"enabled": False})
    assert (paused.json()["status"], paused.json()["nextRunAt"]) == ("paused", None)
    resumed = await api.request("PATCH", path, json={"enabled": True})
    body = resumed.json()
    assert (body["anchorAt"], body["nextRunAt"]) == (job["anchorAt"], job["nextRunAt"])
    runs = await api.request("GET", f"{path}/runs")
    assert [run["trigger"] for run in runs.json()["items"]] == ["manual"]
