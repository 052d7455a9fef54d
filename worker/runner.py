"""The worker: one run loop that claims due work, handler tasks, leases, streams and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Final

import structlog
from pymongo.errors import PyMongoError

from shared.db import Database, ensure_indexes
from shared.jitter import jittered_start
from shared.model import RunTrigger
from shared.registry import JobTypeRegistry, build_registry
from shared.runs import utc_now
from shared.settings import Settings
from worker.backoff import Backoff, Stopped, brief, is_transient, persist
from worker.claiming import Claimed, Claimer
from worker.fairness import interleave, job_owner
from worker.handlers.context import Executor, Handler
from worker.leases import Leases, RunBook, WorkerState
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.notifications import Notifier
from worker.outcomes import Finisher
from worker.recovery import Recovery
from worker.scheduling import Enqueued, Scheduler
from worker.store import JobView, WorkerStore
from worker.streams import DueTime, StreamHub, StreamsUnavailable, Timetable

# With change streams the worker still looks at the database this often (a safety net).
STREAM_HORIZON_SECONDS: Final = 60.0
# Uninterpretable change events trigger at most one earliest-due lookup per this interval.
LOOKUP_GAP_SECONDS: Final = 0.1
# When every slot is busy, wait this long after the first handler finishes, so that the next
# claim takes a batch instead of one run at a time.
CAPACITY_BATCH_SECONDS: Final = 0.01
# Due jobs read for later passes are used for this long, then read again.
READ_AHEAD_SECONDS: Final = 0.5
# Due jobs are read this long before their slot (the read's round trip is then off the lag).
PREFETCH: Final = timedelta(milliseconds=50)
# After the grace period, cancelled handlers get this long to unwind.
CANCEL_WAIT_SECONDS: Final = 5.0
FINAL_FLUSH_SECONDS: Final = 10.0
# Notice follow-ups still running at shutdown get this long (their state is on the jobs).
NOTIFY_DRAIN_SECONDS: Final = 5.0

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
        self.store = WorkerStore(db, self.worker_id, owner_slots=settings.max_running_per_owner > 0)
        self.stop_event = asyncio.Event()
        self.timetable = Timetable()
        self.notifier = Notifier(self.store, settings)
        self.finisher = Finisher(
            self.store, metrics=metrics, on_written=self.notifier.outcomes_written
        )
        self.scheduler = Scheduler(self.store, settings, self.stop_event, metrics=metrics)
        self.claimer = Claimer(self.store, settings, self.stop_event, metrics=metrics)
        mode = "streams" if settings.use_change_streams else "polling"
        self.state = WorkerState(self.worker_id, settings.worker_name, utc_now(), mode)
        self.book = RunBook(self.finisher)
        self.in_flight = self.book.executing
        self.leases = Leases(self.store, settings, self.state, self.book, metrics=metrics)
        self.recovery = Recovery(self.store, settings, self.finisher, metrics=metrics)
        self.registry = registry or build_registry(settings)
        self.handlers = handlers
        # Counted over the worker's life (logged at shutdown): runs started, acquire conflicts.
        self.started_runs = 0
        self.claim_conflicts = 0
        # A claim pass said more pending runs are due right now.
        self._pending_now = False
        self.streams = StreamHub(
            self.store, settings.worker_name, self.timetable, self._fall_back_to_polling, metrics
        )
        self._last_lookup = {"jobs": 0.0, "pending": 0.0}
        # Due jobs read and not yet planned (a herd), and when they were read.
        self._read_ahead: list[JobView] = []
        self._read_at = 0.0
        self._read_full = False  # the last read was a full batch: more may be due
        self._executor: Executor | None = None
        self.cancel_wait_seconds = CANCEL_WAIT_SECONDS
        # Handlers still running after the cancel wait (they ignored cancellation).
        self.stuck_handlers: list[asyncio.Task[None]] = []

    # --- public --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming and shut down gracefully (idempotent)."""
        self.stop_event.set()
        self.timetable.wake.set()

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
        self._executor = Executor(self.settings, self.registry, self.handlers, self.db)
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
        backoff = Backoff("claim")
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
                else:
                    backoff.failed(error)
                await backoff.wait(self.stop_event)
                continue
            backoff.succeeded()
            if not busy:
                await self._idle()

    async def _tick(self) -> bool:
        """Queue due slots, then claim due runs; True if more work is due right now.

        Runs this pass queued are claimed at once (their jobs were just read); other
        pending runs (run-now, retries, slots queued by other workers) come from the queue.
        """
        jobs = self.timetable.jobs
        now = utc_now()
        if not jobs.due(now + PREFETCH):
            if self._stale("jobs", jobs):
                await self._lookup("jobs", jobs, self.store.earliest_job_time, jobs.at)
            return await self._claim_round(Enqueued())
        # A slot is read, planned and queued a moment before it is due (`notBefore` is the
        # slot: nobody starts it early), so that at the slot only the start write stands
        # between it and its handler.
        capacity = self.capacity()
        if capacity <= 0:  # the due jobs wait for a free handler here, or for another worker
            return await self._claim_round(Enqueued())
        slot = max(now, jobs.at) if jobs.at else now
        # Only as many as can start at once are queued (all acquired by this worker): the
        # queue is for run-now, retries and slots queued by workers that died since.
        plan = self.scheduler.plan(
            await self._due_jobs(slot, capacity), max(slot, utc_now()), capacity
        )
        plan.more = bool(self._read_ahead) or self._read_full
        enqueued = await self.scheduler.enqueue(plan)
        if enqueued.others_queued:
            self._pending_now = True  # slots another worker queued: look at the queue too
        if enqueued.later is not None:
            self.timetable.pending.heard(enqueued.later)  # jittered slots: due from notBefore

        async def claim_at_the_slot() -> bool:
            await _sleep_until(plan.now)
            return await self._claim_round(enqueued)

        # The advances go out together with the claim of what was just queued.
        _, busy = await asyncio.gather(
            self.scheduler.advance(enqueued.advances), claim_at_the_slot()
        )
        self.streams.herd(enqueued.more)
        if not enqueued.more:
            await self._lookup("jobs", jobs, self.store.earliest_job_time, None)
        return busy or enqueued.more

    async def _claim_round(self, enqueued: Enqueued) -> bool:
        fresh = enqueued.fresh
        pending = self.timetable.pending
        due = bool(fresh) or self._pending_now or pending.due(utc_now())
        if not due:
            if self._stale("pending", pending):
                await self._lookup("pending", pending, self.store.earliest_pending_time, pending.at)
            return False
        capacity = self.capacity()
        if capacity <= 0:
            self._pending_now = True
            await self.scheduler.advance(enqueued.uncarried(set()))
            return False  # a finishing handler wakes the loop
        # A pass of fresh runs does not read the queue: if it holds runs too, look next tick.
        queue_waits = bool(fresh) and (self._pending_now or pending.due(utc_now()))
        passed = await self.claimer.claim(capacity, fresh, enqueued.jobs, enqueued.carried)
        self.claim_conflicts += passed.conflicts
        if passed.deferred_until is not None:  # runs over their owner's cap: due again then
            self.timetable.pending.heard(passed.deferred_until)
        self._start(passed.claimed)
        # Advances whose start write did not happen (the run did not start) go on their own.
        await self.scheduler.advance(enqueued.uncarried(passed.advanced))
        self._pending_now = passed.more or queue_waits
        if self._pending_now:
            return True
        if not fresh:  # the queue was read: where does it stand now?
            await self._lookup("pending", pending, self.store.earliest_pending_time, None)
        return False

    async def _due_jobs(self, slot: datetime, capacity: int) -> list[JobView]:
        """Up to `capacity` due jobs, from a batch read ahead (one read serves several passes
        of a herd; the start write is conditioned on the version read, so a read a moment old
        is safe). Shuffled: workers reading the same due jobs then mostly queue different ones;
        and owners take turns (`fairness`), so no owner's herd fills the passes.
        """
        short = self._read_full and len(self._read_ahead) < capacity  # a full pass needs more
        if short or not self._read_ahead or time.monotonic() - self._read_at > READ_AHEAD_SECONDS:
            batch = await self.scheduler.read_due(slot)
            self._read_at = time.monotonic()
            self._read_full = len(batch) >= self.settings.claim_batch_size
            random.shuffle(batch)
            self._read_ahead = interleave(batch, job_owner)
        taken, self._read_ahead = self._read_ahead[:capacity], self._read_ahead[capacity:]
        return taken

    def _stale(self, kind: str, due: DueTime) -> bool:
        return due.stale and time.monotonic() - self._last_lookup[kind] >= LOOKUP_GAP_SECONDS

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
            lead = PREFETCH.total_seconds() if kind == "jobs" else 0.0
            delays.append((due.at - now).total_seconds() - lead if due.at else 0.0)
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
        self.started_runs += len(claimed)
        for item in claimed:
            task = asyncio.create_task(self._execute(item), name=f"run-{item.run_id}")
            self.in_flight[item.run_id] = task

    async def _execute(self, item: Claimed) -> None:
        assert self._executor is not None
        trigger = item.run.trigger.value
        started_at = utc_now()  # the handler's start: the record keeps the same instant
        self.metrics.fire_lag(trigger, (started_at - due_at(item)).total_seconds())
        try:
            outcome = await self._executor.execute(item, started_at)
            self.finisher.add(outcome)
            self.metrics.run_finished(
                item.job.type, trigger, outcome.status.value, outcome.duration_ms / 1e3
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
            lambda cap: self.store.count_backlog(utc_now(), cap), self.stop_event
        )

    async def _beat_forever(self) -> None:
        """Every heartbeat: renew leases, report, reap, sweep (each on its own: an outage only
        delays them)."""
        backoff = Backoff("heartbeat")
        steps = (self.leases.renew, self.leases.report, self.recovery.reap, self.recovery.sweep)
        while True:
            now = utc_now()
            failed = False
            for step in steps:
                try:
                    await step(now)
                except PyMongoError as error:
                    failed = True
                    self.metrics.db_error("heartbeat")
                    backoff.failed(error, step=step.__name__)
            if not failed:
                backoff.succeeded()
            # Queued slots are not followed by the change stream: look at the queue every beat.
            self.timetable.pending.unknown()
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
        # Notices of the last outcomes: a short wait; state left behind is on the jobs.
        await self.notifier.drain(NOTIFY_DRAIN_SECONDS)
        await _cancel(background)
        now = utc_now()
        with contextlib.suppress(PyMongoError):
            await self.leases.report(now, stoppedAt=now)
        log.info(
            "worker.stopped", started_runs=self.started_runs, claim_conflicts=self.claim_conflicts
        )


async def _sleep_until(instant: datetime) -> None:
    """Sleep until the clock reads `instant` (1 ms more: the wall clock and the loop's timer
    differ by rounding, and a slot is due only once the clock has reached it)."""
    delay = (instant - utc_now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay + 0.001)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def due_at(item: Claimed) -> datetime:
    """When a run was due, for its fire lag: a slot at its jittered start (computed, as a
    deferral for the owner cap moves `notBefore`), a retry after its backoff (`notBefore`), a
    run-now when requested."""
    run = item.run
    if run.trigger is RunTrigger.SCHEDULE:
        return jittered_start(run.job_id, run.scheduled_for, item.job.options.jitter_seconds)
    if run.trigger is RunTrigger.RETRY and run.not_before is not None:
        return run.not_before
    return run.scheduled_for
