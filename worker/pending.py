"""Pending-run claim passes: run-now requests and retries, each claimed atomically."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from bson import ObjectId
from pymongo.errors import PyMongoError

from shared.db import Document
from shared.model import OverlapPolicy, RunStatus, RunTrigger
from shared.settings import Settings
from worker.backoff import is_transient, persist
from worker.lease_check import keep_if_slow
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.planner import OVERLAP
from worker.records import Claimed, ClaimPass, options_of, retry_policy_of, utc_now
from worker.store import WorkerStore

JOB_DELETED = "job deleted before start"
JOB_PAUSED = "job is paused; retry not started"
# A retry meeting a run in progress (overlap `skip`) waits at least this long before its next try.
MIN_DEFER_SECONDS = 1.0


class PendingClaimer:
    """Claims due pending runs; the runner decides when."""

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        stop: asyncio.Event,
        clock: Callable[[], datetime] = utc_now,
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.stop = stop
        self.clock = clock
        self.metrics = metrics
        self.lease = timedelta(seconds=settings.lease_seconds)

    async def claim(self, capacity: int) -> ClaimPass:
        """Due pending runs (run-now, retries): claim each atomically, then load their jobs."""
        began = time.monotonic()
        now = self.clock()
        due = await self.store.due_pending(now, self.settings.claim_batch_size)
        more = len(due) >= self.settings.claim_batch_size or len(due) > capacity
        if len(due) > capacity:
            due = random.sample(due, capacity)
        lease_until = now + self.lease
        runs: list[Document] = []
        try:
            for candidate in due:
                run = await self.store.claim_pending(candidate["_id"], now, lease_until)
                if run is not None:
                    runs.append(run)
            self.metrics.claim_conflict(len(due) - len(runs))
        except PyMongoError as error:
            if not runs or not is_transient(error):
                raise
            more = True  # start the ones already claimed; the rest on a later pass
        if not runs:
            return ClaimPass(more=more)
        job_ids = {run["jobId"] for run in runs}
        jobs = await persist(
            lambda: self.store.jobs_by_id(job_ids), what="load jobs", stop=self.stop
        )
        claimed, refused, deferred = _triage(runs, jobs)
        for reason, run_ids in refused.items():
            await persist(
                partial(self.store.skip_runs, run_ids, now, reason),
                what="skip runs",
                stop=self.stop,
            )
            self.metrics.slot_recorded(RunStatus.SKIPPED.value, reason, len(run_ids))
        for run_id, not_before in deferred:
            await persist(
                partial(self.store.defer_runs, [run_id], not_before),
                what="defer runs",
                stop=self.stop,
            )
        claimed = await keep_if_slow(self.store, claimed, began, self.settings, self.stop)
        starts = [(item.job_id, item.run_id) for item in claimed]
        await persist(lambda: self.store.mark_started(starts), what="start runs", stop=self.stop)
        return ClaimPass(claimed=claimed, more=more)


def _triage(
    runs: list[Document], jobs: dict[ObjectId, Document]
) -> tuple[list[Claimed], dict[str, list[ObjectId]], list[tuple[ObjectId, datetime]]]:
    """Split claimed pending runs into those to start, to record `skipped`, and to defer.

    Overlap `skip` holds for them too: a run-now of a job whose run is in progress is skipped
    (the API refused it while one was running; this one started meanwhile), and a retry waits
    its backoff again rather than run beside it.
    """
    claimed: list[Claimed] = []
    refused: dict[str, list[ObjectId]] = {JOB_DELETED: [], JOB_PAUSED: [], OVERLAP: []}
    deferred: list[tuple[ObjectId, datetime]] = []
    starting: set[ObjectId] = set()
    for run in runs:
        job = jobs.get(run["jobId"])
        manual = run.get("trigger") == RunTrigger.MANUAL.value
        if job is None:
            refused[JOB_DELETED].append(run["_id"])
        elif not manual and job.get("enabled") is not True:
            refused[JOB_PAUSED].append(run["_id"])
        elif _busy(job, starting):
            if manual:
                refused[OVERLAP].append(run["_id"])
            else:
                wait = max(MIN_DEFER_SECONDS, retry_policy_of(job).backoff_seconds)
                deferred.append((run["_id"], utc_now() + timedelta(seconds=wait)))
        else:
            claimed.append(Claimed(run, job))
            starting.add(job["_id"])
    return claimed, refused, deferred


def _busy(job: Document, starting: set[ObjectId]) -> bool:
    """Whether overlap `skip` forbids starting another run of `job` now."""
    if options_of(job).overlap_policy is not OverlapPolicy.SKIP:
        return False
    return bool(job.get("activeRunIds")) or job["_id"] in starting
