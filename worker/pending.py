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
from shared.model import RunTrigger
from shared.settings import Settings
from worker.backoff import is_transient, persist
from worker.lease_check import keep_if_slow
from worker.records import Claimed, ClaimPass, utc_now
from worker.store import WorkerStore

JOB_DELETED = "job deleted before start"
JOB_PAUSED = "job is paused; retry not started"


class PendingClaimer:
    """Claims due pending runs; the runner decides when."""

    def __init__(
        self,
        store: WorkerStore,
        settings: Settings,
        stop: asyncio.Event,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.stop = stop
        self.clock = clock
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
        claimed: list[Claimed] = []
        refused: dict[str, list[ObjectId]] = {JOB_DELETED: [], JOB_PAUSED: []}
        for run in runs:
            job = jobs.get(run["jobId"])
            if job is None:
                refused[JOB_DELETED].append(run["_id"])
            elif run.get("trigger") == RunTrigger.RETRY.value and job.get("enabled") is not True:
                refused[JOB_PAUSED].append(run["_id"])
            else:
                claimed.append(Claimed(run, job))
        for reason, run_ids in refused.items():
            await persist(
                partial(self.store.skip_runs, run_ids, now, reason),
                what="skip runs",
                stop=self.stop,
            )
        claimed = await keep_if_slow(self.store, claimed, began, self.settings, self.stop)
        starts = [(item.job_id, item.run_id) for item in claimed]
        await persist(lambda: self.store.mark_started(starts), what="start runs", stop=self.stop)
        return ClaimPass(claimed=claimed, more=more)
