"""Outcome buffer: finished attempts are written in batches and kept until the database is back."""

from __future__ import annotations

import asyncio
from typing import Final

import structlog
from bson import ObjectId
from pymongo.errors import PyMongoError

from worker.backoff import Backoff, brief, is_transient
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.records import Outcome
from worker.store import WorkerStore

# Finished runs wait this long for company: one bulk write per collection per batch.
FLUSH_DELAY_SECONDS: Final = 0.05
FLUSH_BATCH: Final = 500

log = structlog.get_logger("worker.finish")


class Finisher:
    """Collects outcomes and writes them; survives database outages without losing any."""

    def __init__(
        self,
        store: WorkerStore,
        delay: float = FLUSH_DELAY_SECONDS,
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.delay = delay
        self._buffer: list[Outcome] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def add(self, outcome: Outcome) -> None:
        """Queue an outcome for the next flush."""
        self._buffer.append(outcome)
        self._wake.set()

    def unwritten_run_ids(self) -> list[ObjectId]:
        """Runs finished here whose record is not written yet: their leases must be kept."""
        return [outcome.run_id for outcome in self._buffer if outcome.update_run]

    def __len__(self) -> int:
        return len(self._buffer)

    async def run(self) -> None:
        """Flush shortly after outcomes arrive, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._buffer) < FLUSH_BATCH:
                await asyncio.sleep(self.delay)
            await self.flush()

    async def flush(self, stop: asyncio.Event | None = None) -> bool:
        """Write everything buffered, waiting out outages; False if `stop` cut it short."""
        async with self._lock:
            backoff = Backoff()
            while self._buffer:
                batch = self._buffer[:FLUSH_BATCH]
                try:
                    await self.store.write_outcomes(batch)
                except PyMongoError as error:
                    self.metrics.db_error("finish")
                    if not is_transient(error):
                        await self._write_one_by_one(batch)
                        continue
                    if backoff.should_warn():
                        log.warning(
                            "db.unavailable",
                            operation="finish runs",
                            buffered=len(self._buffer),
                            error=brief(error),
                        )
                    if not await backoff.wait(stop):
                        return False
                    continue
                del self._buffer[: len(batch)]
                backoff.reset()
        return True

    async def _write_one_by_one(self, batch: list[Outcome]) -> None:
        """Isolate an outcome the server refuses for good; keep the rest for the next try."""
        for outcome in batch:
            try:
                await self.store.write_outcomes([outcome])
            except PyMongoError as error:
                if is_transient(error):
                    return
                log.error("run.finish_refused", run_id=str(outcome.run_id), error=brief(error))
            self._buffer.remove(outcome)
