"""Finding jobs, reading one, and acting on it through the same repository code as the API."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database
from shared.model import JobOptions, OverlapPolicy
from tests.integration.api.dashboard.helpers import DashboardSession


def _spec(name: str, **changes) -> jobs_repo.JobSpec:
    fields = {
        "name": name,
        "type": "echo",
        "cron": "0 8 * * *",
        "timezone": "Europe/Berlin",
        "payload": {"message": "hello"},
        "enabled": True,
        "options": JobOptions(),
    }
    return jobs_repo.JobSpec(**{**fields, **changes})


async def _job(db: Database, owner: str, name: str, **changes):
    return await jobs_repo.create_job(db, _spec(name, **changes), owner_id=owner)


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/dashboard/jobs/[0-9a-f]{24}">([^<]*)</a></td>', html)


async def test_jobs_are_found_by_owner_name_type_and_status(
    admin: DashboardSession, db: Database
) -> None:
    await _job(db, "alice", "morning digest")
    await _job(db, "alice", "evening digest")
    await _job(db, "bob", "bob's digest")
    paused = await _job(db, "bob", "ping", enabled=False)
    page = await admin.get("/dashboard/jobs/?owner=alice")
    assert sorted(_names(page.text)) == ["evening digest", "morning digest"]
    page = await admin.get("/dashboard/jobs/?q=DIGEST&owner=bob")
    assert _names(page.text) == ["bob&#39;s digest"]
    page = await admin.get("/dashboard/jobs/?status=paused")
    assert _names(page.text) == [paused.name]
    page = await admin.get("/dashboard/jobs/?type=noop")
    assert _names(page.text) == []
    page = await admin.get("/dashboard/jobs/?q=.*")  # the search is literal text, not a regex
    assert _names(page.text) == []
    assert (await admin.get("/dashboard/jobs/?status=bogus")).status_code == 400


async def test_sorts_and_pages(admin: DashboardSession, db: Database) -> None:
    for index in range(30):
        job = await _job(db, "carol", f"job {index:02d}")
        await db[JOBS].update_one({"_id": job.id}, {"$set": {"failureCount": index}})
    first = await admin.get("/dashboard/jobs/?owner=carol&sort=failures")
    names = _names(first.text)
    assert names[:3] == ["job 29", "job 28", "job 27"]
    assert len(names) == 25
    assert "30 matching jobs" in first.text
    assert 'rel="next"' in first.text
    second = await admin.get("/dashboard/jobs/?owner=carol&sort=failures&page=2")
    assert _names(second.text) == [f"job {index:02d}" for index in range(4, -1, -1)]
    assert 'rel="next"' not in second.text
    for sort in ("next", "last", "created"):
        assert (await admin.get(f"/dashboard/jobs/?sort={sort}")).status_code == 200


async def test_job_page_shows_escaped_payload_and_fire_times_in_both_zones(
    admin: DashboardSession, db: Database
) -> None:
    job = await _job(
        db, "alice", "<b>bold</b>", payload={"message": "</pre><script>alert(1)</script>"}
    )
    page = await admin.get(f"/dashboard/jobs/{job.id}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    table = page.text.split('id="fire-times"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", table)
    assert len(rows) == 10
    # 08:00 Berlin is 07:00 UTC in winter (CET) and 06:00 UTC in summer (CEST).
    for utc_text, local_text in rows:
        assert local_text.split(" ")[1] == "08:00:00"
        assert utc_text.split(" ")[1] in {"07:00:00", "06:00:00"}
        assert ("CET" in local_text) == (utc_text.split(" ")[1] == "07:00:00")


async def test_an_interval_job_page_shows_its_every_and_grid_fire_times(
    admin: DashboardSession, db: Database
) -> None:
    # Created at an odd instant so the grid is not on whole hours: slots are anchorAt + k x 90 min.
    created = datetime(2026, 1, 5, 10, 17, tzinfo=UTC)
    job = await jobs_repo.create_job(
        db, _spec("every 90 min", cron=None, every="PT90M"), owner_id="alice", now=created
    )
    assert job.anchor_at == created
    page = await admin.get(f"/dashboard/jobs/{job.id}")
    assert page.status_code == 200
    assert '<code id="every">PT90M</code>' in page.text
    assert "stored schedule cannot be evaluated" not in page.text
    table = page.text.split('id="fire-times"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", table)
    assert len(rows) == 10
    times = [
        datetime.strptime(utc_text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
        for utc_text, _ in rows
    ]
    step = timedelta(minutes=90)
    assert all((moment - created) % step == timedelta(0) for moment in times)
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [step] * 9
    assert datetime.now(UTC) - step < times[0] <= datetime.now(UTC) + step


async def test_pause_and_resume_change_the_status_like_a_patch(
    admin: DashboardSession, db: Database
) -> None:
    job = await _job(db, "alice", "digest")
    await admin.get(f"/dashboard/jobs/{job.id}")
    response = await admin.post(f"/dashboard/jobs/{job.id}/pause", {"version": str(job.version)})
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/jobs/{job.id}?notice=paused"
    stored = await jobs_repo.get_job(db, job.id)
    assert stored is not None
    assert (stored.enabled, stored.status.value, stored.next_run_at) == (False, "paused", None)
    assert stored.version == job.version + 1
    page = await admin.get(response.headers["location"])
    assert 'id="job-status">paused<' in page.text
    assert "Paused: no slot will run" in page.text
    response = await admin.post(
        f"/dashboard/jobs/{job.id}/resume", {"version": str(stored.version)}
    )
    resumed = await jobs_repo.get_job(db, job.id)
    assert resumed is not None
    assert (resumed.status.value, resumed.next_run_at is not None) == ("idle", True)


async def test_a_stale_page_gets_412_and_changes_nothing(
    admin: DashboardSession, db: Database
) -> None:
    job = await _job(db, "alice", "digest")
    await admin.get(f"/dashboard/jobs/{job.id}")
    await jobs_repo.set_enabled(db, job.id, enabled=False)  # someone else, meanwhile
    response = await admin.post(f"/dashboard/jobs/{job.id}/resume", {"version": str(job.version)})
    assert response.status_code == 412
    assert "changed since this page was loaded" in response.text
    stored = await jobs_repo.get_job(db, job.id)
    assert stored is not None and stored.enabled is False
    response = await admin.post(f"/dashboard/jobs/{job.id}/delete", {"version": str(job.version)})
    assert response.status_code == 412
    assert await jobs_repo.get_job(db, job.id) is not None


async def test_run_now_queues_a_manual_run_and_refuses_overlap_with_409(
    admin: DashboardSession, db: Database
) -> None:
    job = await _job(db, "alice", "digest", options=JobOptions(overlap_policy=OverlapPolicy.SKIP))
    await admin.get(f"/dashboard/jobs/{job.id}")
    fetch = {"x-dashboard-fetch": "1"}
    response = await admin.post(f"/dashboard/jobs/{job.id}/run-now", headers=fetch)
    assert response.status_code == 202
    run = await db[RUNS].find_one({"jobId": job.id})
    assert run is not None
    assert (run["trigger"], run["status"]) == ("manual", "pending")
    assert str(run["_id"]) in response.text
    runs = await admin.get(f"/dashboard/jobs/{job.id}/runs", headers=fetch)
    assert f'data-run-id="{run["_id"]}"' in runs.text
    again = await admin.post(f"/dashboard/jobs/{job.id}/run-now", headers=fetch)
    assert again.status_code == 409
    assert "overlap policy is skip" in again.text
    page = await admin.post(f"/dashboard/jobs/{job.id}/run-now")  # without the script
    assert page.status_code == 409
    assert 'id="action-error"' in page.text


async def test_test_run_queues_a_test_run_like_the_api(
    admin: DashboardSession, db: Database
) -> None:
    job = await _job(db, "alice", "digest", options=JobOptions(overlap_policy=OverlapPolicy.SKIP))
    page = await admin.get(f"/dashboard/jobs/{job.id}")
    assert f'action="/dashboard/jobs/{job.id}/test"' in page.text
    fetch = {"x-dashboard-fetch": "1"}
    response = await admin.post(f"/dashboard/jobs/{job.id}/test", headers=fetch)
    assert response.status_code == 202
    run = await db[RUNS].find_one({"jobId": job.id})
    assert run is not None
    assert (run["trigger"], run["status"]) == ("test", "pending")
    assert f"Test run {run['_id']} queued." == response.text
    again = await admin.post(f"/dashboard/jobs/{job.id}/run-now", headers=fetch)
    assert again.status_code == 409  # shares run-now's one queued place under overlap skip
    redirected = await admin.post(f"/dashboard/jobs/{job.id}/test")
    assert redirected.status_code == 409  # without the script: the page with the error
    assert 'id="action-error"' in redirected.text


async def test_delete_asks_first_then_deletes_like_the_api(
    admin: DashboardSession, db: Database
) -> None:
    job = await _job(db, "alice", "digest")
    run_id = await jobs_repo.queue_run_now(db, job)
    confirm = await admin.get(f"/dashboard/jobs/{job.id}/delete")
    assert "Delete permanently" in confirm.text
    assert await jobs_repo.get_job(db, job.id) is not None  # asking deletes nothing
    response = await admin.post(f"/dashboard/jobs/{job.id}/delete", {"version": str(job.version)})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/jobs/?notice=deleted"
    assert await jobs_repo.get_job(db, job.id) is None
    run = await db[RUNS].find_one({"_id": run_id})
    assert run is not None and run["status"] == "skipped"
    assert (await admin.get(f"/dashboard/jobs/{job.id}")).status_code == 404
    again = await admin.post(f"/dashboard/jobs/{job.id}/delete", {"version": "1"})
    assert again.status_code == 404


async def test_unknown_or_malformed_job_ids_are_404_pages(admin: DashboardSession) -> None:
    for job_id in (str(ObjectId()), "nope", "x" * 300):
        response = await admin.get(f"/dashboard/jobs/{job_id}")
        assert response.status_code == 404
        assert "text/html" in response.headers["content-type"]


async def test_run_history_pages_back(admin: DashboardSession, db: Database) -> None:
    job = await _job(db, "alice", "digest")
    now = datetime.now(UTC)
    await db[RUNS].insert_many(
        [
            {
                "_id": ObjectId(),
                "jobId": job.id,
                "ownerId": "alice",
                "jobName": job.name,
                "type": "echo",
                "slot": f"s{index}",
                "scheduledFor": now - timedelta(minutes=index),
                "trigger": "schedule",
                "attempt": 1,
                "status": "failed",
                "createdAt": now - timedelta(minutes=index),
                "endedAt": now,
                "durationMs": 1500,
                "error": f"boom {index}",
            }
            for index in range(25)
        ]
    )
    page = await admin.get(f"/dashboard/jobs/{job.id}")
    assert page.text.count("data-run-id=") == 20
    assert "1.5 s" in page.text
    older = re.search(r'href="(/dashboard/jobs/[0-9a-f]{24}\?before=[0-9a-f]{24})"', page.text)
    assert older is not None
    rest = await admin.get(older.group(1))
    assert rest.text.count("data-run-id=") == 5


@pytest.mark.parametrize("small_sort", [0, 1000])
async def test_windowed_sorted_pages_equal_the_unbounded_sort(
    db: Database, monkeypatch: pytest.MonkeyPatch, small_sort: int
) -> None:
    """The head windows are an optimisation only: every page is the plain sorted query's."""
    import random

    from api.dashboard import queries
    from api.dashboard.queries import (
        _SORTS,
        LIST_PROJECTION,
        PAGE_SIZE,
        JobSearch,
        JobSort,
        search_jobs,
    )

    monkeypatch.setattr(queries, "SMALL_SORT", small_sort)  # 0: always through the windows
    rng = random.Random(7)
    now = datetime.now(UTC)
    spans = [0, 30, 300, 4000, 30_000, 200_000, 2_000_000]  # every window edge, both sides
    documents = []
    for index in range(180):
        enabled = index % 9 != 0
        span = timedelta(seconds=rng.choice(spans) + rng.randint(0, 5))
        documents.append(
            {
                "_id": ObjectId(),
                "ownerId": f"owner-{index % 3}",
                "name": f"job {index}",
                "type": "echo",
                "cron": "* * * * *",
                "enabled": enabled,
                "status": "idle" if enabled else "paused",
                "nextRunAt": now + span if enabled else None,
                "lastRunAt": None if index % 7 == 0 else now - span,
                "failureCount": rng.choice([0, 0, 1, 2, 5, 12, 40, 150, 2000]),
                "createdAt": now,
                "updatedAt": now,
            }
        )
    await db[JOBS].insert_many(documents)
    for sort in JobSort:
        for owner in ("", "owner-1"):
            base = JobSearch(owner=owner, sort=sort).query()
            if sort is JobSort.NEXT_RUN:
                base["nextRunAt"] = {"$ne": None}
            cursor = db[JOBS].find(base, LIST_PROJECTION).sort(_SORTS[sort])
            expected = [document["_id"] async for document in cursor]
            seen = []
            for page in range(1, len(expected) // PAGE_SIZE + 2):
                result = await search_jobs(db, JobSearch(owner=owner, sort=sort, page=page), now)
                seen += [job.id for job in result.jobs]
                assert result.has_next == (page * PAGE_SIZE < len(expected))
            assert seen == expected, (sort, owner)


async def test_generate_report_jobs_show_their_reports_escaped(
    admin: DashboardSession, db: Database
) -> None:
    from shared.db import REPORTS

    job = await _job(db, "alice", "weekly numbers", type="generateReport")
    now = datetime.now(UTC)
    await db[REPORTS].insert_one(
        {
            "_id": ObjectId(),
            "ownerId": "alice",
            "jobId": job.id,
            "runId": ObjectId(),
            "type": "runSummary",
            "period": "week",
            "periodStart": now - timedelta(days=7),
            "periodEnd": now,
            "timezone": "UTC",
            "data": {"runs": 42, "note": "<img src=x onerror=alert(1)>"},
            "createdAt": now,
        }
    )
    page = await admin.get(f"/dashboard/jobs/{job.id}")
    reports = page.text.split('id="reports-h"')[1]
    assert "&#34;runs&#34;: 42" in reports
    assert "&lt;img src=x onerror=alert(1)&gt;" in reports
    assert "<img src=x" not in page.text
    other = await _job(db, "alice", "not a report")
    assert 'id="reports-h"' not in (await admin.get(f"/dashboard/jobs/{other.id}")).text


def _fire_times(html: str) -> list[str]:
    if 'id="fire-times"' not in html:
        return []
    table = html.split('id="fire-times"')[1].split("</table>", maxsplit=1)[0]
    return [utc for utc, _ in re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", table)]


async def test_bounds_one_offs_and_completed_jobs_are_shown(
    admin: DashboardSession, db: Database
) -> None:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=1)
    bounded = await _job(
        db,
        "alice",
        "three mornings",
        cron="0 8 * * *",
        timezone="UTC",
        start_at=start,
        end_at=start + timedelta(days=3),
        max_runs=2,
    )
    page = await admin.get(f"/dashboard/jobs/{bounded.id}")
    bounds = page.text.split('id="bounds">')[1].split("</dd>")[0]
    assert "from " in bounds and "until " in bounds and "at most 2 successful runs" in bounds
    assert len(_fire_times(page.text)) == 2  # maxRuns cuts the preview
    once = await _job(db, "alice", "once", cron=None, run_at=start + timedelta(hours=5))
    page = await admin.get(f"/dashboard/jobs/{once.id}")
    assert 'id="run-at"' in page.text
    assert _fire_times(page.text) == [
        (start + timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S UTC")
    ]
    await db[JOBS].update_one(
        {"_id": once.id}, {"$set": {"status": "completed", "nextRunAt": None}}
    )
    page = await admin.get(f"/dashboard/jobs/{once.id}")
    assert '<span class="badge completed" id="job-status">completed</span>' in page.text
    assert _fire_times(page.text) == []
    assert 'id="completed-note"' in page.text
    listed = await admin.get("/dashboard/jobs/?status=completed")
    assert _names(listed.text) == ["once"]


async def test_paused_reason_shows_in_the_job_list_and_page(
    admin: DashboardSession, db: Database
) -> None:
    manual = await _job(db, "alice", "held", enabled=False)
    auto = await _job(db, "alice", "fragile")
    await db[JOBS].update_one(
        {"_id": auto.id},
        {
            "$set": {
                "enabled": False,
                "status": "paused",
                "pausedReason": "auto: 3 consecutive failures",
                "failureStreak": 3,
            }
        },
    )
    listing = (await admin.get("/dashboard/jobs/?status=paused")).text
    assert '<span class="meta paused-reason">manual</span>' in listing
    assert '<span class="meta paused-reason">auto: 3 consecutive failures</span>' in listing
    page = (await admin.get(f"/dashboard/jobs/{auto.id}")).text
    assert '<dd id="paused-reason">auto: 3 consecutive failures</dd>' in page
    held = (await admin.get(f"/dashboard/jobs/{manual.id}")).text
    assert '<dd id="paused-reason">manual</dd>' in held


async def test_a_job_page_shows_its_jitter_only_when_it_has_one(
    admin: DashboardSession, db: Database
) -> None:
    jittered = await _job(db, "alice", "spread", options=JobOptions(jitter_seconds=90))
    plain = await _job(db, "alice", "on time")
    page = await admin.get(f"/dashboard/jobs/{jittered.id}")
    assert "<dt>jitter</dt><dd>up to 90 s after each slot</dd>" in page.text
    assert "<dt>jitter</dt>" not in (await admin.get(f"/dashboard/jobs/{plain.id}")).text
