"""`notify`, `pauseAfterFailures` and `pausedReason` through the API: stored, returned, refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from shared.db import JOBS
from tests.integration.api.conftest import ApiFactory
from tests.integration.api.helpers import ALICE, ROOT, Api, echo_job, field_errors

AT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NOTIFY = {
    "email": "alice@example.com",
    "webhook": "https://hooks.example.com/cron",
    "onFailure": True,
    "onRecovery": False,
}


@pytest.fixture
async def hooks_api(make_api: ApiFactory) -> Api:
    """The API with one webhook host allowed (nothing is ever sent to it here)."""
    result: Api = await make_api(http_allowed_hosts=["hooks.example.com"])
    return result


async def test_notify_and_pause_after_are_stored_and_returned(hooks_api: Api) -> None:
    job = await hooks_api.create(echo_job(notify=NOTIFY, pauseAfterFailures=5))
    assert job["notify"] == NOTIFY
    assert job["pauseAfterFailures"] == 5
    assert (job["pausedReason"], job["failureStreak"], job["lastNotification"]) == (None, 0, None)
    stored = await hooks_api.db[JOBS].find_one({"_id": ObjectId(job["id"])})
    assert stored is not None
    assert stored["notify"] == NOTIFY
    assert stored["pauseAfterFailures"] == 5


async def test_defaults_without_notify(api: Api, make_api: ApiFactory) -> None:
    job = await api.create(echo_job())
    assert (job["notify"], job["pauseAfterFailures"]) == (None, 0)
    strict: Api = await make_api(default_pause_after_failures=3)
    defaulted = await strict.create(echo_job("with default"))
    assert defaulted["pauseAfterFailures"] == 3
    never = await strict.create(echo_job("never", pauseAfterFailures=0))
    assert never["pauseAfterFailures"] == 0


async def test_channel_defaults_fill_in(api: Api) -> None:
    job = await api.create(echo_job(notify={"email": "a@example.com"}))
    assert job["notify"] == {
        "email": "a@example.com",
        "webhook": None,
        "onFailure": True,
        "onRecovery": True,
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"notify": {"email": "not-an-address"}}, "notify.email"),
        ({"notify": {"email": "a@b@example.com"}}, "notify.email"),
        ({"notify": {"webhook": "ftp://hooks.example.com/x"}}, "notify.webhook"),
        ({"notify": {"webhook": "https://elsewhere.example.org/x"}}, "notify.webhook"),
        ({"notify": {"webhook": "http://127.0.0.1/x"}}, "notify.webhook"),
        ({"notify": {"webhook": "http://169.254.169.254/latest"}}, "notify.webhook"),
        ({"notify": {"webhook": "/relative"}}, "notify.webhook"),
        ({"notify": {"sms": "+4912345"}}, "notify.sms"),
        ({"notify": {"onFailure": "sometimes"}}, "notify.onFailure"),
        ({"pauseAfterFailures": 101}, "pauseAfterFailures"),
        ({"pauseAfterFailures": -1}, "pauseAfterFailures"),
    ],
)
async def test_bad_notify_input_is_422_naming_the_field(
    hooks_api: Api, fields: dict[str, Any], field: str
) -> None:
    response = await hooks_api.request("POST", "/jobs", json=echo_job(**fields))
    assert response.status_code == 422, response.text
    assert field in field_errors(response), response.text
    assert await hooks_api.db[JOBS].count_documents({}) == 0


async def test_admins_get_no_host_exemption_for_webhooks(make_api: ApiFactory) -> None:
    admin_api: Api = await make_api(http_admin_any_host=True)
    body = echo_job(notify={"webhook": "https://elsewhere.example.org/x"})
    response = await admin_api.request("POST", "/jobs", ROOT, admin=True, json=body)
    assert response.status_code == 422, response.text
    assert "notify.webhook" in field_errors(response)


async def test_patch_replaces_notify_and_pause_after_and_revalidates(hooks_api: Api) -> None:
    job = await hooks_api.create(echo_job(notify=NOTIFY))
    path = f"/jobs/{job['id']}"
    unnotified = {"$set": {"unnotifiedFailures": 7}}
    await hooks_api.db[JOBS].update_one({"_id": ObjectId(job["id"])}, unnotified)
    changed = await hooks_api.request(
        "PATCH", path, json={"notify": {"email": "b@example.com"}, "pauseAfterFailures": 2}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["notify"]["email"] == "b@example.com"
    assert changed.json()["notify"]["webhook"] is None
    assert changed.json()["pauseAfterFailures"] == 2
    stored = await hooks_api.db[JOBS].find_one({"_id": ObjectId(job["id"])})
    assert stored is not None
    assert stored["unnotifiedFailures"] == 0  # counted anew under the new settings
    refused = await hooks_api.request(
        "PATCH", path, json={"notify": {"webhook": "https://elsewhere.example.org/x"}}
    )
    assert refused.status_code == 422
    assert "notify.webhook" in field_errors(refused)
    null = await hooks_api.request("PATCH", path, json={"notify": None})
    assert null.status_code == 422
    assert "notify" in field_errors(null)


async def test_manual_pause_and_resume_set_and_clear_the_reason(api: Api) -> None:
    job = await api.create(echo_job())
    path = f"/jobs/{job['id']}"
    paused = await api.request("PATCH", path, json={"enabled": False})
    assert paused.json()["pausedReason"] == "manual"
    await api.db[JOBS].update_one({"_id": ObjectId(job["id"])}, {"$set": {"failureStreak": 4}})
    assert (await api.request("GET", path)).json()["failureStreak"] == 4
    resumed = await api.request("PATCH", path, json={"enabled": True})
    assert resumed.json()["pausedReason"] is None
    assert resumed.json()["failureStreak"] == 0
    created_paused = await api.create(echo_job("off", enabled=False))
    assert created_paused["pausedReason"] == "manual"


async def test_resume_of_an_auto_paused_job_clears_the_reason(api: Api) -> None:
    job = await api.create(echo_job())
    auto = {
        "enabled": False,
        "status": "paused",
        "pausedReason": "auto: 3 consecutive failures",
        "failureStreak": 3,
        "lastNotification": {"at": AT, "kind": "paused", "ok": False, "error": "email: x"},
    }
    await api.db[JOBS].update_one({"_id": ObjectId(job["id"])}, {"$set": auto})
    shown = (await api.request("GET", f"/jobs/{job['id']}", ALICE)).json()
    assert shown["pausedReason"] == "auto: 3 consecutive failures"
    assert shown["lastNotification"]["kind"] == "paused"
    assert shown["lastNotification"]["ok"] is False
    resumed = await api.request("PATCH", f"/jobs/{job['id']}", json={"enabled": True})
    assert (resumed.json()["pausedReason"], resumed.json()["failureStreak"]) == (None, 0)
