"""The worker: one run loop that claims due work, handler tasks, leases, streams and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Final

import httpx
import structlog
from bson import ObjectId
from pymongo.errors import PyMongoError

from shared.db import Database, ensure_indexes
from shared.registry import JobTypeRegistry, build_registry
from shared.settings import Settings
from worker.backoff import Backoff, Stopped, brief, is_transient, persist
from worker.claimer import Claimer
from worker.context import Handler
from worker.executor import Executor
from worker.finisher import Finisher
from worker.heartbeat import Heartbeat, WorkerState
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.pending import PendingClaimer
from worker.records import Claimed, ClaimPass, utc_now
from worker.store import WorkerStore, count_backlog
from worker.streams import StreamHub, StreamsUnavailable
from worker.timetable import DueTime, Timetable

# With change streams the worker still looks at the database this often (a safety net).
STREAM_HORIZON_SECONDS: Final = 60.0
# Uninterpretable change events trigger at most one earliest-due lookup per this interval.
LOOKUP_GAP_SECONDS: Final = 0.1
# When every slot is busy, wait this long after the first handler finishes, so that the next
# claim takes a batch instead of one run at a time.
CAPACITY_BATCH_SECONDS: Final = 0.01
# After the grace period, cancelled handlers get this long to unwind.
CANCEL_WAIT_SECONDS: Final = 5.0
FINAL_FLUSH_SECONDS: Final = 10.0
HTTP_TIMEOUT_SECONDS: Final = 30.0

log = structlog.get_logger("worker")


def new_worker_id(name: str) -> str:
    """Unique per process: `<name>:<pid>:<random>`."""
    return f"{name}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """One worker process's scheduling engine; `run()` until `request_stop()`."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        handlers: Mapping[str, Handler] | None = None,
        registry: JobTypeRegistry | None = None,
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.db = db
        self.worker_id = new_worker_id(settings.worker_name)
        self.store = WorkerStore(db, self.worker_id)
        self.stop_event = asyncio.Event()
        self.timetable = Timetable()
        self.finisher = Finisher(self.store, metrics=metrics)
        self.claimer = Claimer(self.store, settings, self.stop_event, metrics=metrics)
        self.pending = PendingClaimer(self.store, settings, self.stop_event, metrics=metrics)
        mode = "streams" if settings.use_change_streams else "polling"
        self.state = WorkerState(self.worker_id, settings.worker_name, utc_now(), mode)
        self.heartbeat = Heartbeat(
            self.store,
            settings,
            self.state,
            self.finisher,
            held_runs=self.held_runs,
            executing_runs=lambda: set(self.in_flight),
            metrics=metrics,
        )
        self.registry = registry or build_registry(settings)
        self.handlers = handlers
        self.in_flight: dict[ObjectId, asyncio.Task[None]] = {}
        self.streams = StreamHub(
            self.store, settings.worker_name, self.timetable, self._fall_back_to_polling, metrics
        )
        self._last_lookup = {"jobs": 0.0, "pending": 0.0}
        self._executor: Executor | None = None
        self.cancel_wait_seconds = CANCEL_WAIT_SECONDS
        # Handlers still running after the cancel wait (they ignored cancellation).
        self.stuck_handlers: list[asyncio.Task[None]] = []

    # --- public --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming and shut down gracefully (idempotent)."""
        self.stop_event.set()
        self.timetable.wake.set()

    def held_runs(self) -> list[ObjectId]:
        """Runs whose lease this worker must keep: executing, or finished but not yet written."""
        return list(dict.fromkeys([*self.in_flight, *self.finisher.unwritten_run_ids()]))

    def capacity(self) -> int:
        """How many more handlers may start now."""
        return self.settings.worker_concurrency - len(self.in_flight)

    async def run(self) -> None:
        """Run until `request_stop()`; returns after the graceful shutdown."""
        structlog.contextvars.bind_contextvars(worker_id=self.worker_id)
        if self.handlers is None:
            from worker.handlers import HANDLERS

            self.handlers = HANDLERS
        log.info("worker.starting", name=self.settings.worker_name, mode=self.state.mode)
        self.metrics.set_mode(self.state.mode)
        self.metrics.watch_capacity(lambda: len(self.in_flight), self.settings.worker_concurrency)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            self._executor = Executor(self.settings, self.registry, self.handlers, self.db, http)
            try:
                await persist(
                    lambda: ensure_indexes(self.db, self.settings),
                    what="ensure indexes",
                    stop=self.stop_event,
                )
            except Stopped:
                return
            background = [
                asyncio.create_task(self.finisher.run(), name="finisher"),
                asyncio.create_task(self._beat_forever(), name="heartbeat"),
                asyncio.create_task(self._sample_backlog(), name="metrics"),
            ]
            if self.settings.use_change_streams:
                self.streams.start(self.stop_event)
            try:
                await self._loop()
            finally:
                await self._shutdown(background)

    # --- the run loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        backoff = Backoff()
        while not self.stop_event.is_set():
            self.timetable.wake.clear()
            try:
                busy = await self._tick()
            except Stopped:
                break
            except PyMongoError as error:
                self.metrics.db_error("claim")
                if not is_transient(error):
                    log.error("worker.claim_failed", error=brief(error))
                elif backoff.should_warn():
                    log.warning("db.unavailable", operation="claim", error=brief(error))
                await backoff.wait(self.stop_event)
                continue
            if backoff.failures:
                log.info("db.available")
                backoff.reset()
            if not busy:
                await self._idle()

    async def _tick(self) -> bool:
        """Claim what is due, refresh what is stale; True if more work is due right now."""
        jobs_busy = await self._round(
            "jobs", self.timetable.jobs, self.claimer.claim_scheduled, self.store.earliest_job_time
        )
        pending_busy = await self._round(
            "pending",
            self.timetable.pending,
            self.pending.claim,
            self.store.earliest_pending_time,
        )
        return jobs_busy or pending_busy

    async def _round(
        self,
        kind: str,
        due: DueTime,
        claim: Callable[[int], Awaitable[ClaimPass]],
        earliest: Callable[[datetime], Awaitable[datetime | None]],
    ) -> bool:
        if due.due(utc_now()):
            capacity = self.capacity()
            if capacity <= 0:
                return False  # a finishing handler wakes the loop
            claimed = await claim(capacity)
            self._start(claimed.claimed)
            if claimed.more:
                return True
            await self._lookup(kind, due, earliest, None)
        elif due.stale and time.monotonic() - self._last_lookup[kind] >= LOOKUP_GAP_SECONDS:
            await self._lookup(kind, due, earliest, due.at)
        return False

    async def _lookup(
        self,
        kind: str,
        due: DueTime,
        earliest: Callable[[datetime], Awaitable[datetime | None]],
        before: datetime | None,
    ) -> None:
        """Find the earliest due time before `before` and the horizon (one `limit 1` query)."""
        due.lookup_started()
        self._last_lookup[kind] = time.monotonic()
        horizon = utc_now() + timedelta(seconds=self._horizon_seconds())
        bound = min(before, horizon) if before else horizon
        try:
            found = await earliest(bound)
        except BaseException:
            due.stale = True
            raise
        due.lookup_done(found or bound)

    async def _idle(self) -> None:
        """Sleep until the earliest due time, a change event, a free slot, or stop."""
        if self.capacity() <= 0:
            await self.timetable.wake.wait()  # a finishing handler sets it
            await asyncio.sleep(CAPACITY_BATCH_SECONDS)
            return
        now = utc_now()
        delays = []
        for kind, due in (("jobs", self.timetable.jobs), ("pending", self.timetable.pending)):
            delays.append((due.at - now).total_seconds() if due.at else 0.0)
            if due.stale:
                since = time.monotonic() - self._last_lookup[kind]
                delays.append(LOOKUP_GAP_SECONDS - since)
        timeout = max(0.0, min(delays)) + 0.001
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.timetable.wake.wait(), timeout)

    def _horizon_seconds(self) -> float:
        if self.state.mode == "polling":
            return self.settings.poll_interval_seconds
        return STREAM_HORIZON_SECONDS

    # --- handler tasks -----------------------------------------------------------------------

    def _start(self, claimed: list[Claimed]) -> None:
        for item in claimed:
            task = asyncio.create_task(self._execute(item), name=f"run-{item.run_id}")
            self.in_flight[item.run_id] = task

    async def _execute(self, item: Claimed) -> None:
        assert self._executor is not None
        trigger, job_type = item.run.get("trigger"), item.job.get("type")
        self.metrics.fire_lag(trigger, (utc_now() - item.run["scheduledFor"]).total_seconds())
        try:
            outcome = await self._executor.execute(item)
            self.finisher.add(outcome)
            self.metrics.run_finished(
                job_type, trigger, outcome.status.value, outcome.duration_ms / 1e3
            )
            if outcome.retry is not None:
                self.metrics.retry_queued()
                self.timetable.pending.heard(outcome.retry["notBefore"])
        finally:
            was_full = self.capacity() <= 0
            self.in_flight.pop(item.run_id, None)
            if was_full:
                self.timetable.wake.set()

    # --- background tasks --------------------------------------------------------------------

    async def _sample_backlog(self) -> None:
        """The due backlog and pending-queue depth for the metrics, at most every few seconds."""
        await self.metrics.sample_backlog(
            lambda cap: count_backlog(self.store, utc_now(), cap), self.stop_event
        )

    async def _beat_forever(self) -> None:
        while True:
            self.state.runs_in_flight = len(self.in_flight)
            await self.heartbeat.beat()
            await asyncio.sleep(self.settings.heartbeat_seconds)

    def _fall_back_to_polling(self, error: StreamsUnavailable) -> None:
        """Called once by the stream hub when the server refuses change streams."""
        self.state.mode = "polling"
        self.metrics.set_mode("polling")
        log.warning(
            "stream.unsupported",
            error=brief(error),
            message="the server cannot open change streams; polling every "
            f"{self.settings.poll_interval_seconds:g} s instead",
        )
        self.timetable.resync()

    # --- shutdown ----------------------------------------------------------------------------

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        """Stop watching, let handlers finish within the grace period, write everything."""
        log.info("worker.stopping", in_flight=len(self.in_flight))
        await self.streams.stop()
        if self.in_flight:
            tasks = list(self.in_flight.values())
            _, late = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
            for task in late:
                task.cancel()  # the executor records them `abandoned` ("worker shutdown")
            if late:
                await asyncio.wait(late, timeout=self.cancel_wait_seconds)
                self.stuck_handlers = [task for task in late if not task.done()]
        try:
            await asyncio.wait_for(self.finisher.flush(), FINAL_FLUSH_SECONDS)
        except TimeoutError:
            log.error("worker.unwritten_runs", runs=len(self.finisher))
        await _cancel(background)
        self.state.runs_in_flight = len(self.in_flight)
        now = utc_now()
        with contextlib.suppress(PyMongoError):
            await self.heartbeat.report(now, stoppedAt=now)
        log.info("worker.stopped")


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
