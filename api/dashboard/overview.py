"""The overview's figures: computed by a few bounded queries, shared as a short-lived snapshot.

Every admin's page (and its auto-refresh) reads the latest snapshot; at most one computation runs
at a time per API process and a new one starts only when the snapshot is older than
SNAPSHOT_MAX_AGE, so the database load does not grow with the number of open dashboards.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog

from api.dashboard.queries import FAILED_STATUSES, WorkerRow, list_workers
from shared.db import JOBS, RUNS, Database, Document
from shared.model import JobStatus, RunStatus, RunTrigger

log = structlog.get_logger(__name__)

SNAPSHOT_MAX_AGE: Final = timedelta(seconds=5)
CLOSE_GRACE_SECONDS: Final = 10.0
# A snapshot lives at least this many times as long as it took to compute: the overview keeps
# the database busy at most 1/5 of the time, however slow the queries get.
DUTY_FACTOR: Final = 5.0
# Fire lag is measured on at most this many scheduled runs that ended in the last hour.
LAG_SAMPLE: Final = 5000
BACKLOG_COUNT_LIMIT: Final = 100_000
FINAL_OUTCOMES: Final = (
    RunStatus.SUCCEEDED.value,
    *FAILED_STATUSES,
    RunStatus.SKIPPED.value,
    RunStatus.MISSED.value,
)


@dataclass(frozen=True)
class Outcomes:
    """Runs that ended in a window, by final status."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        """All ended runs (skipped and missed slots included)."""
        return sum(self.counts.values())

    @property
    def failure_ratio(self) -> float | None:
        """Failed, timed-out and abandoned attempts over every attempt that ran."""
        failed = sum(self.counts.get(status, 0) for status in FAILED_STATUSES)
        ran = failed + self.counts.get(RunStatus.SUCCEEDED.value, 0)
        return None if ran == 0 else failed / ran


@dataclass(frozen=True)
class Snapshot:
    """Everything the overview shows, as of `taken_at`."""

    taken_at: datetime
    compute_ms: float
    jobs_by_status: dict[str, int]
    last_hour: Outcomes
    last_day: Outcomes
    lag_p50_ms: float | None
    lag_p99_ms: float | None
    lag_sample: int
    due_jobs: int
    due_runs: int
    workers: list[WorkerRow] = field(default_factory=list)

    @property
    def jobs_total(self) -> int:
        """Every stored job."""
        return sum(self.jobs_by_status.values())

    @property
    def workers_alive(self) -> list[WorkerRow]:
        """Workers whose heartbeat is fresh and that did not stop."""
        return [worker for worker in self.workers if worker.alive]


async def _jobs_by_status(db: Database) -> dict[str, int]:
    counts = {status.value: 0 for status in JobStatus}
    async for row in await db[JOBS].aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]):
        counts[str(row["_id"])] = int(row["n"])
    return counts


async def _outcomes(db: Database, now: datetime) -> tuple[Outcomes, Outcomes, int]:
    """Last hour's and day's outcomes and the queued runs due, in one pass over `cron_runs`.

    On MongoDB the `$or` is an index union: `retention_ttl` (endedAt) and `pending`
    (status, notBefore); the stand-in scans the collection once instead of twice.
    """
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    pending = RunStatus.PENDING.value
    pipeline: list[Document] = [
        {
            "$match": {
                "$or": [
                    {"endedAt": {"$gte": day_ago}},
                    {"status": pending, "notBefore": {"$lte": now}},
                ]
            }
        },
        {
            "$group": {
                "_id": "$status",
                "all": {"$sum": 1},
                "day": {"$sum": {"$cond": [{"$gte": ["$endedAt", day_ago]}, 1, 0]}},
                "hour": {"$sum": {"$cond": [{"$gte": ["$endedAt", hour_ago]}, 1, 0]}},
            }
        },
    ]
    day: Counter[str] = Counter()
    hour: Counter[str] = Counter()
    due_runs = 0
    async for row in await db[RUNS].aggregate(pipeline):
        if row["_id"] == pending:
            due_runs = int(row["all"])
            continue
        day[str(row["_id"])] += int(row["day"])
        hour[str(row["_id"])] += int(row["hour"])
    return Outcomes(+hour), Outcomes(+day), due_runs  # unary + drops the zero counts


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


async def _fire_lags(db: Database, now: datetime) -> list[float]:
    """Start minus scheduled time (ms) of scheduled first attempts that ended in the last hour."""
    query = {
        "endedAt": {"$gte": now - timedelta(hours=1)},
        "trigger": RunTrigger.SCHEDULE.value,
        "startedAt": {"$ne": None},
    }
    projection = {"_id": 0, "scheduledFor": 1, "startedAt": 1}
    lags = []
    async for run in db[RUNS].find(query, projection).limit(LAG_SAMPLE):
        started, scheduled = run.get("startedAt"), run.get("scheduledFor")
        if isinstance(started, datetime) and isinstance(scheduled, datetime):
            lags.append(max(0.0, (started - scheduled).total_seconds() * 1000))
    return lags


async def _due_jobs(db: Database, now: datetime) -> int:
    """Enabled jobs whose slot has come (index `due`)."""
    query = {"enabled": True, "nextRunAt": {"$lte": now}}
    return await db[JOBS].count_documents(query, limit=BACKLOG_COUNT_LIMIT)


async def compute_snapshot(db: Database, stale_after: timedelta) -> Snapshot:
    """Run the overview's queries concurrently."""
    started = asyncio.get_running_loop().time()
    now = datetime.now(UTC)
    jobs, (hour, day, due_runs), lags, due_jobs, workers = await asyncio.gather(
        _jobs_by_status(db),
        _outcomes(db, now),
        _fire_lags(db, now),
        _due_jobs(db, now),
        list_workers(db, now, stale_after),
    )
    return Snapshot(
        taken_at=now,
        compute_ms=(asyncio.get_running_loop().time() - started) * 1000,
        jobs_by_status=jobs,
        last_hour=hour,
        last_day=day,
        lag_p50_ms=_percentile(lags, 0.50),
        lag_p99_ms=_percentile(lags, 0.99),
        lag_sample=len(lags),
        due_jobs=due_jobs,
        due_runs=due_runs,
        workers=workers,
    )


def snapshot_lifetime(snapshot: Snapshot, minimum: timedelta = SNAPSHOT_MAX_AGE) -> timedelta:
    """How long a snapshot is served before a refresh starts."""
    return max(minimum, timedelta(milliseconds=snapshot.compute_ms * DUTY_FACTOR))


class OverviewCache:
    """The latest snapshot; refreshed in the background when older than `max_age` (or five
    times its computation time, if that is longer).

    A request finding a stale snapshot gets it at once (with its age shown) and starts one
    refresh; only the very first request waits for a computation.
    """

    def __init__(
        self, db: Database, stale_after: timedelta, max_age: timedelta = SNAPSHOT_MAX_AGE
    ) -> None:
        self._db = db
        self._stale_after = stale_after
        self._max_age = max_age
        self._snapshot: Snapshot | None = None
        self._refresh: asyncio.Task[Snapshot] | None = None

    async def get(self) -> Snapshot:
        """The latest snapshot (fresh if none was computed yet)."""
        snapshot = self._snapshot
        if snapshot is not None:
            age = datetime.now(UTC) - snapshot.taken_at
            if age < snapshot_lifetime(snapshot, self._max_age):
                return snapshot
        task = self.refresh()
        return snapshot if snapshot is not None else await asyncio.shield(task)

    def refresh(self) -> asyncio.Task[Snapshot]:
        """Start a computation unless one is running; returns it."""
        task = self._refresh
        if task is None or task.done():
            task = asyncio.create_task(self._compute())
            # A failed background refresh is logged in `_compute`; nobody else may await it.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._refresh = task
        return task

    async def _compute(self) -> Snapshot:
        try:
            snapshot = await compute_snapshot(self._db, self._stale_after)
        except Exception as error:
            log.warning("dashboard.overview_failed", error=str(error))
            raise
        self._snapshot = snapshot
        return snapshot

    async def close(self, grace_seconds: float = CLOSE_GRACE_SECONDS) -> None:
        """Application shutdown: let a computation in flight finish (bounded), then cancel it.

        Cancelling a driver operation midway can leave its connection unreturned, so the
        computation is given a moment to end on its own first.
        """
        task = self._refresh
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=grace_seconds)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
