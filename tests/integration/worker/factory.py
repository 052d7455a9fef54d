"""Jobs and runs for worker tests, written through the same data layer as the API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bson import ObjectId

from shared import jobs_repo, runs
from shared.db import JOBS, RUNS, Database, Document
from shared.model import JobDocument, JobOptions
from shared.runs import utc_now

T = TypeVar("T")

FINAL = frozenset({"succeeded", "failed", "timeout", "abandoned", "skipped", "missed"})


async def create_job(
    db: Database,
    cron: str | None = "*/2 * * * * *",
    *,
    every: str | None = None,
    now: datetime | None = None,
    name: str | None = None,
    owner: str = "owner-1",
    type_name: str = "noop",
    payload: dict[str, Any] | None = None,
    timezone: str = "UTC",
    enabled: bool = True,
    run_at: datetime | None = None,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    max_runs: int | None = None,
    **options: Any,
) -> JobDocument:
    """Create a job as the API does (`jobs_repo.create_job`); options in camelCase.

    `every` makes it an interval job (no cron) anchored at `now` (default: the real now);
    `run_at` a one-off job; `start_at`, `end_at`, `max_runs` are its bounds.
    """
    spec = jobs_repo.JobSpec(
        name=name or f"job-{uuid.uuid4().hex[:8]}",
        type=type_name,
        cron=None if every is not None or run_at is not None else cron,
        every=every,
        run_at=run_at,
        start_at=start_at,
        end_at=end_at,
        max_runs=max_runs,
        timezone=timezone,
        payload=payload or {},
        enabled=enabled,
        options=JobOptions.model_validate(options),
    )
    return await jobs_repo.create_job(db, spec, owner_id=owner, now=now)


async def runs_of(db: Database, job_id: ObjectId, **query: Any) -> list[Document]:
    """The job's run documents, by scheduled time then attempt."""
    cursor = db[RUNS].find({"jobId": job_id, **query}).sort([("scheduledFor", 1), ("attempt", 1)])
    return await cursor.to_list()


async def job_of(db: Database, job_id: ObjectId) -> Document | None:
    """The stored job document."""
    return await db[JOBS].find_one({"_id": job_id})


async def wait_for(
    probe: Callable[[], Awaitable[T]], within: float, what: str, interval: float = 0.1
) -> T:
    """Poll `probe` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)


def slot_in(seconds: float) -> datetime:
    """The whole second at least `seconds` from now."""
    moment = utc_now() + timedelta(seconds=seconds)
    return moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)


def cron_at(moment: datetime) -> str:
    """A seconds-field cron that fires at `moment` (UTC) and then not for a year."""
    utc = moment.astimezone(UTC)
    return f"{utc.second} {utc.minute} {utc.hour} {utc.day} {utc.month} *"


async def wait_for_document(
    probe: Callable[[], Awaitable[Document | None]], within: float, what: str
) -> Document:
    """`wait_for` for a `find_one`: the document found."""
    found = await wait_for(probe, within, what)
    assert found is not None
    return found


def running_run(
    job: JobDocument,
    *,
    scheduled_for: datetime,
    worker_id: str,
    lease_until: datetime,
    started_at: datetime | None = None,
    attempt: int = 1,
) -> Document:
    """A scheduled run as a worker holds it (`running`, leased), built by the one constructor."""
    run = runs.scheduled_run(
        job, scheduled_for, now=started_at or scheduled_for, start_deadline=None
    )
    run.update(
        status="running",
        workerId=worker_id,
        leaseExpiresAt=lease_until,
        startedAt=started_at or scheduled_for,
        attempt=attempt,
        notBefore=None,
    )
    return run
