"""`jitterSeconds` over HTTP: stored and returned, checked against the schedule, previewed."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.jitter import jittered_start
from tests.integration.api.helpers import Api, echo_job, field_errors


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_jitter_is_created_patched_and_returned(api: Api) -> None:
    job = await api.create(echo_job(cron="0 8 * * *", jitterSeconds=120))
    assert job["jitterSeconds"] == 120
    patched = await api.request(
        "PATCH", f"/jobs/{job['id']}", json={"jitterSeconds": 30}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["jitterSeconds"] == 30
    plain = await api.create(echo_job(name="plain"))
    assert plain["jitterSeconds"] == 0


async def test_a_schedule_patch_that_leaves_too_much_jitter_is_refused(api: Api) -> None:
    job = await api.create(echo_job(cron="0 * * * *", jitterSeconds=600))
    response = await api.request(
        "PATCH", f"/jobs/{job['id']}", json={"cron": "* * * * *"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 422, response.text
    assert "half the schedule's shortest interval" in field_errors(response)["jitterSeconds"]
    interval = await api.request(
        "POST", "/jobs", json=echo_job(every="PT2M", cron=None, jitterSeconds=61)
    )
    assert set(field_errors(interval)) == {"jitterSeconds"}


async def test_the_preview_shows_each_slot_and_its_jittered_start(api: Api) -> None:
    job_id = "6740a1f2c3d4e5f601234567"
    body = {"cron": "0 8 * * *", "count": 3, "jitterSeconds": 600, "jobId": job_id}
    response = await api.request("POST", "/preview", json=body)
    assert response.status_code == 200, response.text
    fires = response.json()["fireTimes"]
    for fire in fires:
        slot = parse_time(fire["utc"])
        starts = parse_time(fire["startsAt"])
        assert starts == jittered_start(job_id, slot, 600)  # what every worker computes
        assert slot <= starts < slot + timedelta(seconds=600)
    assert len({parse_time(f["startsAt"]) - parse_time(f["utc"]) for f in fires}) == 3


async def test_the_preview_without_jitter_or_without_a_job_id(api: Api) -> None:
    plain = await api.request("POST", "/preview", json={"cron": "0 8 * * *", "count": 2})
    assert all(fire["startsAt"] == fire["utc"] for fire in plain.json()["fireTimes"])
    unknown = await api.request(
        "POST", "/preview", json={"cron": "0 8 * * *", "count": 2, "jitterSeconds": 60}
    )
    assert unknown.status_code == 200, unknown.text
    assert all(fire["startsAt"] is None for fire in unknown.json()["fireTimes"])
    too_much = await api.request(
        "POST", "/preview", json={"cron": "*/2 * * * *", "jitterSeconds": 61}
    )
    assert set(field_errors(too_much)) == {"jitterSeconds"}
