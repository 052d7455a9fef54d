"""The dashboard's reads: job search, failures, workers. Every one is bounded by a limit.

Mutations are not here: the dashboard changes jobs only through `shared.jobs_repo`, like the API.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING

from shared.db import JOBS, RUNS, WORKERS, Database, Document
from shared.model import JobDocument, JobStatus, RunStatus

PAGE_SIZE: Final = 25
MAX_PAGE: Final = 400  # 10,000 jobs at 25 a page; skips stay bounded
# Counts stop here: "10,000+" is as useful as the exact figure and costs a bounded scan.
COUNT_LIMIT: Final = 10_000
SEARCH_MAX_LENGTH: Final = 100
FAILED_STATUSES: Final = (
    RunStatus.FAILED.value,
    RunStatus.TIMEOUT.value,
    RunStatus.ABANDONED.value,
)
FAILURES_WINDOW: Final = timedelta(days=7)
FAILURES_SCANNED: Final = 1000  # newest failed runs grouped on the failures page
FAILURE_GROUPS: Final = 100
WORKERS_SHOWN: Final = 200
# Widening ranges of the sort key tried before an unbounded sorted query (see _head_windows).
TIME_WINDOWS: Final = tuple(
    timedelta(seconds=seconds) for seconds in (60, 600, 3600, 6 * 3600, 86_400, 7 * 86_400)
)
FAILURE_FLOORS: Final = (10_000, 3000, 1000, 300, 100, 50, 20, 10, 5, 2, 1)
# Filters matching at most this many jobs are sorted directly (cheap), without windows.
SMALL_SORT: Final = 1000
# Only what the list shows is read from each job.
LIST_PROJECTION: Final = {
    "payload": 0,
    "activeRunIds": 0,
}


class JobSort(StrEnum):
    """Orders of the job list."""

    CREATED = "created"
    NEXT_RUN = "next"
    LAST_RUN = "last"
    FAILURES = "failures"


_SORTS: Final[dict[JobSort, list[tuple[str, int]]]] = {
    JobSort.CREATED: [("_id", DESCENDING)],
    JobSort.NEXT_RUN: [("nextRunAt", ASCENDING), ("_id", ASCENDING)],
    JobSort.LAST_RUN: [("lastRunAt", DESCENDING), ("_id", ASCENDING)],
    JobSort.FAILURES: [("failureCount", DESCENDING), ("_id", ASCENDING)],
}


@dataclass(frozen=True)
class JobSearch:
    """The job list's filters, order and page (validated by the controller)."""

    name: str = ""
    owner: str = ""
    job_type: str = ""
    status: JobStatus | None = None
    sort: JobSort = JobSort.CREATED
    page: int = 1

    def query(self) -> Document:
        """The MongoDB filter: exact owner/type/status, case-insensitive name substring."""
        query: Document = {}
        if self.owner:
            query["ownerId"] = self.owner
        if self.job_type:
            query["type"] = self.job_type
        if self.status is not None:
            query["status"] = self.status.value
        if self.name:
            query["name"] = {"$regex": re.escape(self.name), "$options": "i"}
        return query


@dataclass(frozen=True)
class JobPage:
    """One page of the job list."""

    jobs: list[JobDocument]
    has_next: bool
    total: int
    total_capped: bool = field(default=False)


def _head_windows(sort: JobSort, now: datetime, floors: tuple[int, ...]) -> list[Document]:
    """Ranges of the sort key, narrowest first, each holding a prefix of the sort order.

    Any job outside a window sorts after every job inside it, so a window that yields a full
    page (plus one) gives exactly the page the unbounded query would, while sorting only the
    head of the order. The last resort is the unbounded query.
    """
    if sort is JobSort.NEXT_RUN:
        return [{"nextRunAt": {"$lte": now + span}} for span in TIME_WINDOWS]
    if sort is JobSort.LAST_RUN:
        return [{"lastRunAt": {"$gte": now - span}} for span in TIME_WINDOWS]
    if sort is JobSort.FAILURES:
        return [{"failureCount": {"$gte": floor}} for floor in floors]
    return []


async def _count(db: Database, query: Document) -> int:
    """Matching jobs, counted up to COUNT_LIMIT + 1 (all jobs: from the collection's metadata)."""
    if not query:
        return await db[JOBS].estimated_document_count()
    return await db[JOBS].count_documents(query, limit=COUNT_LIMIT + 1)


async def _failure_floors(db: Database, query: Document) -> tuple[int, ...]:
    """The failure floors not above the highest failure count (higher ones hold no job)."""
    pipeline = [{"$match": query}, {"$group": {"_id": None, "top": {"$max": "$failureCount"}}}]
    rows = await (await db[JOBS].aggregate(pipeline)).to_list()
    top = rows[0].get("top") if rows else None
    if not isinstance(top, int):
        return ()
    return tuple(floor for floor in FAILURE_FLOORS if floor <= top)


async def _page_of(db: Database, query: Document, sort: JobSort, skip: int) -> list[Document]:
    cursor = (
        db[JOBS].find(query, LIST_PROJECTION).sort(_SORTS[sort]).skip(skip).limit(PAGE_SIZE + 1)
    )
    return [document async for document in cursor]


def _within(query: Document, window: Document) -> Document:
    """`query` narrowed to a window of the sort key (merged with a condition already on it)."""
    key, bound = next(iter(window.items()))
    return {**query, key: {**query.get(key, {}), **bound}}


async def search_jobs(db: Database, search: JobSearch, now: datetime | None = None) -> JobPage:
    """One page (PAGE_SIZE jobs, plus one to know whether another page follows) and a count.

    "Next run" leaves out paused jobs (they have none). Sorted pages are read through
    `_head_windows`, so a first page sorts a few hundred jobs rather than all of them.
    """
    now = now or datetime.now(UTC)
    query = search.query()
    if search.sort is JobSort.NEXT_RUN:
        query["nextRunAt"] = {"$ne": None}
    skip = (min(search.page, MAX_PAGE) - 1) * PAGE_SIZE
    floors = await _failure_floors(db, query) if search.sort is JobSort.FAILURES else ()
    windows = [_within(query, window) for window in _head_windows(search.sort, now, floors)]
    # The count and the first (narrowest) attempt run side by side.
    total, documents = await asyncio.gather(
        _count(db, query), _page_of(db, windows[0] if windows else query, search.sort, skip)
    )
    if windows and len(documents) <= PAGE_SIZE:
        wider = windows[1:] if total > SMALL_SORT else []  # a small result: sort it at once
        for attempt in [*wider, query]:
            documents = await _page_of(db, attempt, search.sort, skip)
            if len(documents) > PAGE_SIZE:
                break
    jobs = [JobDocument.from_mongo(document) for document in documents[:PAGE_SIZE]]
    return JobPage(
        jobs=jobs,
        has_next=len(documents) > PAGE_SIZE and search.page < MAX_PAGE,
        total=min(total, COUNT_LIMIT),
        total_capped=total > COUNT_LIMIT,
    )


@dataclass(frozen=True)
class FailureGroup:
    """Failed runs of one job type with one error, newest first."""

    job_type: str
    error: str
    count: int
    latest: datetime | None
    statuses: list[str]
    job_id: Any
    job_name: str
    owner_id: str


def _failed_since(start: datetime) -> Document:
    return {"status": {"$in": list(FAILED_STATUSES)}, "endedAt": {"$gte": start}}


async def failure_groups(db: Database, now: datetime) -> list[FailureGroup]:
    """The newest FAILURES_SCANNED failed/timed-out/abandoned runs of the last 7 days, grouped."""
    pipeline: list[Document] = [
        {
            "$match": {
                "status": {"$in": list(FAILED_STATUSES)},
                "endedAt": {"$gte": now - FAILURES_WINDOW},
            }
        },
        {"$sort": {"endedAt": -1}},
        {"$limit": FAILURES_SCANNED},
        {
            "$group": {
                "_id": {"type": "$type", "error": "$error"},
                "count": {"$sum": 1},
                "latest": {"$max": "$endedAt"},
                "statuses": {"$addToSet": "$status"},
                "jobId": {"$first": "$jobId"},
                "jobName": {"$first": "$jobName"},
                "ownerId": {"$first": "$ownerId"},
            }
        },
        {"$sort": {"count": -1, "latest": -1}},
        {"$limit": FAILURE_GROUPS},
    ]
    groups = []
    async for row in await db[RUNS].aggregate(pipeline):
        key = row.get("_id") or {}
        groups.append(
            FailureGroup(
                job_type=str(key.get("type") or "?"),
                error=str(key.get("error") or "(no message)"),
                count=int(row.get("count", 0)),
                latest=row.get("latest"),
                statuses=sorted(str(status) for status in row.get("statuses") or []),
                job_id=row.get("jobId"),
                job_name=str(row.get("jobName") or ""),
                owner_id=str(row.get("ownerId") or ""),
            )
        )
    return groups


async def latest_failures(db: Database, now: datetime, limit: int = 50) -> list[Document]:
    """The newest failed/timed-out/abandoned runs of the last 7 days."""
    query = _failed_since(now - FAILURES_WINDOW)
    projection = {"result": 0}
    cursor = db[RUNS].find(query, projection).sort("endedAt", DESCENDING).limit(limit)
    return [document async for document in cursor]


@dataclass(frozen=True)
class WorkerRow:
    """A `cron_workers` heartbeat document, tolerant of missing and extra fields."""

    id: str
    name: str
    host: str
    pid: Any
    version: str
    mode: str
    started_at: datetime | None
    last_seen_at: datetime | None
    stopped_at: datetime | None
    runs_in_flight: Any
    alive: bool

    @classmethod
    def of(cls, document: Document, now: datetime, stale_after: timedelta) -> WorkerRow:
        """Parse one heartbeat document."""
        last_seen = _datetime(document.get("lastSeenAt"))
        stopped = _datetime(document.get("stoppedAt"))
        alive = stopped is None and last_seen is not None and now - last_seen <= stale_after
        return cls(
            id=str(document.get("_id", "")),
            name=str(document.get("name") or document.get("_id", "")),
            host=str(document.get("host") or "—"),
            pid=document.get("pid", "—"),
            version=str(document.get("version") or "—"),
            mode=str(document.get("mode") or "—"),
            started_at=_datetime(document.get("startedAt")),
            last_seen_at=last_seen,
            stopped_at=stopped,
            runs_in_flight=document.get("runsInFlight", "—"),
            alive=alive,
        )


def _datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


async def list_workers(db: Database, now: datetime, stale_after: timedelta) -> list[WorkerRow]:
    """Workers seen most recently first (the TTL index keeps 7 days of them)."""
    cursor = db[WORKERS].find({}).sort("lastSeenAt", DESCENDING).limit(WORKERS_SHOWN)
    return [WorkerRow.of(document, now, stale_after) async for document in cursor]
