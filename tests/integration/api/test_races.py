"""Racing requests on one job: run-now under overlap `skip`, PATCHes with or without If-Match."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS
from tests.integration.api.helpers import Api, echo_job

ERROR_SHAPE = {"status", "title", "detail", "errors"}


class HeldRead:
    """Wraps `jobs_repo.get_job`: the first read completes, then waits until released.

    This lets a test make one request read the job, let another one read and write it, and only
    then let the first one write: both have read the same version before either wrote.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0
        self._real = jobs_repo.get_job
        monkeypatch.setattr(jobs_repo, "get_job", self._get_job)

    async def _get_job(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        job = await self._real(*args, **kwargs)
        if self.calls == 1:
            self.read.set()
            await self.release.wait()
        return job


async def test_concurrent_run_now_queues_one_run_when_overlap_is_skip(api: Api) -> None:
    created = await api.create(echo_job())
    path = f"/jobs/{created['id']}/run-now"
    responses = await asyncio.gather(*(api.request("POST", path) for _ in range(5)))
    assert sorted(response.status_code for response in responses) == [202, 409, 409, 409, 409]
    [accepted] = [response for response in responses if response.status_code == 202]
    runs = await api.db[RUNS].find({"jobId": ObjectId(created["id"])}).to_list()
    assert [str(run["_id"]) for run in runs] == [accepted.json()["runId"]]
    for refused in (response for response in responses if response.status_code == 409):
        assert set(refused.json()) == ERROR_SHAPE
        assert "forbids overlapping runs" in refused.json()["detail"]


async def test_concurrent_run_now_queues_every_run_when_overlap_is_allowed(api: Api) -> None:
    created = await api.create(echo_job(overlapPolicy="allow"))
    path = f"/jobs/{created['id']}/run-now"
    responses = await asyncio.gather(*(api.request("POST", path) for _ in range(5)))
    assert [response.status_code for response in responses] == [202] * 5
    assert await api.db[RUNS].count_documents({"jobId": ObjectId(created["id"])}) == 5


async def test_same_if_match_read_by_both_patches_lets_one_write(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await api.create(echo_job())
    path, match = f"/jobs/{created['id']}", {"If-Match": '"1"'}
    held = HeldRead(monkeypatch)
    slow = asyncio.create_task(
        api.request("PATCH", path, headers=match, json={"timeoutSeconds": 9})
    )
    await asyncio.wait_for(held.read.wait(), 10)
    fast = await api.request("PATCH", path, headers=match, json={"name": "renamed"})
    held.release.set()
    late = await slow

    assert (fast.status_code, late.status_code) == (200, 412), late.text
    assert set(late.json()) == ERROR_SHAPE
    assert late.headers["ETag"] == '"2"'
    stored = await api.db[JOBS].find_one({"_id": ObjectId(created["id"])})
    assert stored is not None
    assert (stored["name"], stored["timeoutSeconds"], stored["version"]) == (
        "renamed",
        created["timeoutSeconds"],
        2,
    )


async def test_concurrent_patches_without_if_match_last_writer_wins(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await api.create(echo_job("original"))
    path = f"/jobs/{created['id']}"
    held = HeldRead(monkeypatch)
    # The slow PATCH read the name "original" before the fast one renamed the job; writing
    # last, it must still leave its own name, not keep the one written in between.
    slow = asyncio.create_task(
        api.request("PATCH", path, json={"name": "original", "timeoutSeconds": 9})
    )
    await asyncio.wait_for(held.read.wait(), 10)
    fast = await api.request("PATCH", path, json={"name": "renamed"})
    held.release.set()
    late = await slow

    assert (fast.status_code, late.status_code) == (200, 200), late.text
    assert (fast.json()["version"], late.json()["version"]) == (2, 3)
    assert (late.json()["name"], late.json()["timeoutSeconds"]) == ("original", 9)
    stored = await api.db[JOBS].find_one({"_id": ObjectId(created["id"])})
    assert stored is not None
    assert (stored["name"], stored["timeoutSeconds"], stored["version"]) == ("original", 9, 3)
