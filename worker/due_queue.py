"""Where claim passes take due jobs from: one range query per batch, fresh documents every pass."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Final

from bson import ObjectId

from shared.db import Document
from worker.store import WorkerStore

# Ids of due jobs read but not taken in one pass are kept this long for the next passes.
KEEP_FOR: Final = timedelta(seconds=1)


class DueQueue:
    """Due jobs for claim passes, read in batches.

    A pass usually takes fewer jobs than a batch holds (as many as the free concurrency). The
    rest of the batch is kept as ids, and a later pass reads just those documents again by
    `_id`: the plan is always made from the job as it is now (paused, edited, claimed by another
    worker or finished since), while a herd costs one range query per batch instead of one per
    pass.
    """

    def __init__(self, store: WorkerStore, batch_size: int) -> None:
        self.store = store
        self.batch_size = batch_size
        self._kept: list[ObjectId] = []
        self._read_at = datetime.min.replace(tzinfo=UTC)
        self._last_read_full = False

    async def take(self, now: datetime, count: int) -> tuple[list[Document], bool]:
        """Up to `count` jobs due at `now`, and whether more are due."""
        if self._kept and now - self._read_at <= KEEP_FOR:
            ids, self._kept = self._kept[:count], self._kept[count:]
            jobs = await self.store.due_jobs_by_id(ids, now)
        else:
            batch = await self.store.due_jobs(now, self.batch_size)
            # Several workers read the same due jobs: a random order keeps most picks apart.
            random.shuffle(batch)
            jobs = batch[:count]
            self._kept = [job["_id"] for job in batch[count:]]
            self._read_at = now
            self._last_read_full = len(batch) >= self.batch_size
        return jobs, bool(self._kept) or self._last_read_full
