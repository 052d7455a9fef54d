"""`If-None-Match` on a job: 304 without a body while the ETag is current."""

from __future__ import annotations

from tests.integration.api.helpers import Api, echo_job


async def test_if_none_match_answers_304_until_the_job_changes(api: Api) -> None:
    job = await api.create(echo_job())
    path = f"/jobs/{job['id']}"
    first = await api.request("GET", path)
    assert first.status_code == 200
    tag = first.headers["ETag"]

    cached = await api.request("GET", path, headers={"If-None-Match": tag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["ETag"] == tag
    for header in ("*", f'"99", {tag}', f"W/{tag}"):
        again = await api.request("GET", path, headers={"If-None-Match": header})
        assert again.status_code == 304, header

    await api.request("PATCH", path, json={"enabled": False})
    fresh = await api.request("GET", path, headers={"If-None-Match": tag})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] != tag and fresh.json()["enabled"] is False


async def test_if_none_match_does_not_reveal_another_owners_job(api: Api) -> None:
    job = await api.create(echo_job())
    response = await api.request(
        "GET", f"/jobs/{job['id']}", sub="mallory", headers={"If-None-Match": "*"}
    )
    assert response.status_code == 404
