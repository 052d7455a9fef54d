"""`/preview` shows `L` and `weekday#n` schedules (with their DST-shifted UTC times)."""

from __future__ import annotations

from tests.integration.api.helpers import Api, field_errors


async def test_preview_of_the_last_day_and_an_nth_weekday(api: Api) -> None:
    response = await api.request(
        "POST", "/preview", json={"cron": "0 12 l * *", "timezone": "Europe/Berlin", "count": 12}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cron"] == "0 12 L * *"
    for fire in body["fireTimes"]:
        assert fire["local"][8:19] in {"28T12:00:00", "29T12:00:00", "30T12:00:00", "31T12:00:00"}
    offsets = {fire["local"][-6:] for fire in body["fireTimes"]}
    assert offsets == {"+01:00", "+02:00"}  # twelve months span both DST changes

    nth = await api.request(
        "POST", "/preview", json={"cron": "0 9 * * FRI#2", "timezone": "UTC", "count": 2}
    )
    assert nth.status_code == 200, nth.text
    for fire in nth.json()["fireTimes"]:
        day = int(fire["utc"][8:10])
        assert 8 <= day <= 14  # the second Friday falls on the 8th..14th


async def test_preview_refuses_hash_with_a_day_of_month(api: Api) -> None:
    response = await api.request("POST", "/preview", json={"cron": "0 0 15 * 5#1"})
    assert response.status_code == 422
    assert "'#' cannot be combined with a day-of-month" in field_errors(response)["cron"]
