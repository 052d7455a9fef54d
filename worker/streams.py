"""When the worker next has work: the timetable of earliest due times, fed by lookups and by
change streams on `cron_jobs` and `cron_runs` (resumed from stored tokens, resynced when lost)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import structlog
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.errors import OperationFailure, PyMongoError

from shared.db import JOBS, RUNS, Document
from shared.model import RunStatus, RunTrigger
from shared.runs import utc_now
from worker.backoff import Backoff, Stopped, brief, persist
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.store import WorkerStore

MAX_AWAIT_MS: Final = 1000
# A getMore that returns empty much sooner than MAX_AWAIT_MS means the server does not wait
# (see the README's known differences): back off locally instead of spinning.
# The pause doubles while the stream stays idle, up to what MongoDB itself waits per getMore, so
# an idle worker makes at most one getMore per stream and second (a real server answers such a
# getMore only after MAX_AWAIT_MS: there the pause never happens).
IDLE_FIRST_SECONDS: Final = 0.25
IDLE_MAX_SECONDS: Final = MAX_AWAIT_MS / 1000
TOKEN_SAVE_SECONDS: Final = 1.0
# Under a steady flow of changes every getMore returns at once: reading them in batches at most
# this often bounds the getMores per stream (the worker's own writes are most of the flow). Run-now
# requests are then noticed within this long under a flow (within IDLE_MAX_SECONDS when idle).
BATCH_PACE_SECONDS: Final = 0.5
# While the run loop works off a herd it reads the due jobs itself, and queued runs wait for the
# herd in any case: the streams are then read only this often (on the stand-in every getMore
# scans the whole oplog; on MongoDB a getMore is cheap and the pause costs nothing either).
HERD_READ_SECONDS: Final = 5.0

log = structlog.get_logger("worker.streams")


# --- the timetable -----------------------------------------------------------------------

# Update events whose changed fields are all among these cannot make a job due sooner.
_IRRELEVANT_JOB_FIELDS = frozenset(
    {
        "status",
        "lastRunAt",
        "lastError",
        "lastDurationMs",
        "activeRunIds",
        "runCount",
        "failureCount",
        "updatedAt",
        "version",
        "name",
        "payload",
        "payloadByAdmin",
        "queuedRunId",
    }
)


@dataclass
class DueTime:
    """The earliest known due time of one kind of work (scheduled jobs, or pending runs).

    `at` None means "unknown: look now". `stale` means an event we could not interpret arrived:
    look the earliest time up again (bounded by `at`, so the lookup stays cheap).
    """

    wake: asyncio.Event
    at: datetime | None = None
    stale: bool = True
    _heard: datetime | None = field(default=None, repr=False)
    _forgotten: bool = field(default=False, repr=False)

    def heard(self, when: datetime) -> None:
        """Something becomes due at `when`."""
        if self._heard is None or when < self._heard:
            self._heard = when
        if self.at is None or when < self.at:
            self.at = when
            self.wake.set()

    def unknown(self) -> None:
        """Something changed in a way that may make work due sooner."""
        self.stale = True
        self.wake.set()

    def forget(self) -> None:
        """Nothing is known any more (resync): check at once."""
        self.at = None
        self.stale = True
        self._forgotten = True
        self.wake.set()

    def lookup_started(self) -> None:
        """A lookup begins: events from now on are kept, so the result cannot hide them."""
        self.stale = False
        self._heard = None
        self._forgotten = False

    def lookup_done(self, earliest: datetime) -> None:
        """The lookup found `earliest` (or the horizon when nothing is due before it)."""
        heard, self._heard = self._heard, None
        if self._forgotten:
            return  # a resync during the lookup: its answer may be outdated
        self.at = min(earliest, heard) if heard is not None else earliest

    def due(self, now: datetime) -> bool:
        """Whether a claim pass is due now."""
        return self.at is None or self.at <= now


class Timetable:
    """The two due times and the one event that wakes the run loop."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.jobs = DueTime(self.wake)
        self.pending = DueTime(self.wake)

    def resync(self) -> None:
        """Forget everything known (stream reopened without resuming)."""
        self.jobs.forget()
        self.pending.forget()

    def on_job_change(self, change: Document) -> None:
        """Interpret a `cron_jobs` change event; what cannot be interpreted triggers a lookup."""
        operation = change.get("operationType")
        if operation in ("insert", "replace"):
            document = change.get("fullDocument")
            if not isinstance(document, dict):
                self.jobs.unknown()
            elif document.get("enabled") is True:
                self._job_at(document.get("nextRunAt"))
        elif operation == "update":
            self._job_updated(change.get("updateDescription"))
        elif operation != "delete":  # drop, rename, dropDatabase: start over
            self.resync()

    def _job_updated(self, description: Any) -> None:
        if not isinstance(description, dict):
            # Servers that send no updateDescription (see the README): look again.
            self.jobs.unknown()
            return
        fields = description.get("updatedFields") or {}
        if isinstance(fields.get("nextRunAt"), datetime):
            self.jobs.heard(fields["nextRunAt"])
        elif {name.split(".")[0] for name in fields} - _IRRELEVANT_JOB_FIELDS or description.get(
            "removedFields"
        ):
            self.jobs.unknown()

    def _job_at(self, when: Any) -> None:
        if isinstance(when, datetime):
            self.jobs.heard(when)

    def on_run_change(self, change: Document) -> None:
        """Interpret a `cron_runs` change event (the stream only passes pending inserts)."""
        document = change.get("fullDocument")
        if change.get("operationType") != "insert" or not isinstance(document, dict):
            self.pending.unknown()
        elif document.get("status") == RunStatus.PENDING.value:
            when = document.get("notBefore") or document.get("createdAt")
            if isinstance(when, datetime):
                self.pending.heard(when)
            else:
                self.pending.unknown()


# --- the change streams ------------------------------------------------------------------

# Only what can wake the worker: run-now requests and retries, and stream-level events. Slots
# queued by the schedule stage are not followed: the worker that queued them claims them at
# once, the others meet them as duplicates in their own schedule pass (and then look at the
# queue), and every heartbeat looks at the queue in any case (a worker that died between
# queueing and claiming).
RUNS_PIPELINE: Final[list[Document]] = [
    {
        "$match": {
            "$or": [
                {
                    "operationType": "insert",
                    "fullDocument.status": RunStatus.PENDING.value,
                    "fullDocument.trigger": {"$ne": RunTrigger.SCHEDULE.value},
                },
                {"operationType": {"$in": ["drop", "rename", "dropDatabase", "invalidate"]}},
            ]
        }
    }
]


class StreamsUnavailable(Exception):
    """The server refuses to open a change stream (standalone server, or no oplog)."""


class ChangeWatcher:
    """Follows one collection; hands each event to `on_change`, calls `on_resync` when lost."""

    def __init__(
        self,
        store: WorkerStore,
        *,
        worker_name: str,
        collection: str,
        pipeline: list[Document],
        on_change: Callable[[Document], None],
        on_resync: Callable[[], None],
        flowing: asyncio.Event | None = None,
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.store = store
        self.flowing = flowing
        self.metrics = metrics
        self.collection = collection
        self.pipeline = pipeline
        self.on_change = on_change
        self.on_resync = on_resync
        self.key = f"{worker_name}:{collection}"
        self.token: Any = None
        self._saved: Any = None
        self._saved_at = 0.0
        # Token saves are best effort: an outage is logged when it starts and when it ends.
        self._token_outage = Backoff("save resume token")
        self.log = log.bind(collection=collection)

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until cancelled or `stop`; StreamsUnavailable if the server cannot."""
        try:
            self.token = self._saved = await persist(
                lambda: self.store.load_token(self.key), what="load resume token", stop=stop
            )
        except Stopped:
            return
        backoff = Backoff("change stream")
        while not stop.is_set():
            try:
                stream = await self._open()
            except OperationFailure as error:
                if self.token is None:
                    raise StreamsUnavailable(str(error)) from error
                self._lost("stream.token_invalid", error)
                continue
            except PyMongoError as error:
                await self._wait_out(error, backoff, stop)
                continue
            backoff.succeeded()
            try:
                async with stream:
                    await self._consume(stream, stop)
            except OperationFailure as error:  # e.g. the token fell off the oplog
                self._lost("stream.history_lost", error)
                await backoff.wait(stop)  # never a tight reopen loop, whatever the server does
            except PyMongoError as error:
                await self._wait_out(error, backoff, stop)

    async def _open(self) -> AsyncChangeStream[Document]:
        collection = self.store.db[self.collection]
        if self.token is not None:
            stream = await collection.watch(
                self.pipeline, resume_after=self.token, max_await_time_ms=MAX_AWAIT_MS
            )
            self.log.info("stream.resumed")
            return stream
        start = await self.store.operation_time()
        stream = await collection.watch(
            self.pipeline, start_at_operation_time=start, max_await_time_ms=MAX_AWAIT_MS
        )
        self.log.info("stream.opened")
        # What changed while no stream was open is unknown: read the state again.
        self.on_resync()
        return stream

    async def _consume(self, stream: AsyncChangeStream[Document], stop: asyncio.Event) -> None:
        idle = IDLE_FIRST_SECONDS
        while not stop.is_set():
            if self.flowing is not None and _locally_buffered(stream) == 0:
                await _hold(self.flowing, stop)
            began = time.monotonic()
            change = await stream.try_next()
            if change is None:
                self._note(stream.resume_token)
                await self.save_token(due_only=True)
                if time.monotonic() - began < MAX_AWAIT_MS / 2000:
                    await _sleep(idle, stop)
                    idle = min(idle * 2, IDLE_MAX_SECONDS)
                continue
            idle = IDLE_FIRST_SECONDS
            if change.get("operationType") == "invalidate":
                self._lost("stream.invalidated", None)
                return
            self.on_change(change)
            self._note(change.get("_id"))
            await self.save_token(due_only=True)
            if _locally_buffered(stream) == 0:
                await _sleep(BATCH_PACE_SECONDS, stop)

    def _note(self, token: Any) -> None:
        if token is not None:
            self.token = token

    def _lost(self, event: str, error: BaseException | None) -> None:
        """The stream cannot continue where it was: start a fresh one and resynchronise."""
        self.log.warning(event, error=brief(error) if error else None)
        self.metrics.resync()
        self.token = None

    async def _wait_out(self, error: PyMongoError, backoff: Backoff, stop: asyncio.Event) -> None:
        self.metrics.db_error("stream")
        backoff.failed(error, collection=self.collection)
        await backoff.wait(stop)

    async def save_token(self, *, due_only: bool = False) -> None:
        """Persist the current token (at most every TOKEN_SAVE_SECONDS when `due_only`)."""
        if self.token == self._saved:
            return
        if due_only and time.monotonic() - self._saved_at < TOKEN_SAVE_SECONDS:
            return
        try:
            await self.store.save_token(self.key, self.token, utc_now())
        except PyMongoError as error:
            self._token_outage.failed(error)  # `db.unavailable`, once per outage
            return
        self._token_outage.succeeded()  # `db.available` if it had failed
        self._saved, self._saved_at = self.token, time.monotonic()


def _locally_buffered(stream: AsyncChangeStream[Document]) -> int | None:
    """Changes already fetched and not yet returned; None if PyMongo's internals differ.

    PyMongo has no public way to tell whether the next `try_next()` will run a getMore.
    """
    buffered = getattr(getattr(stream, "_cursor", None), "_data", None)
    return len(buffered) if buffered is not None else None


async def _hold(flowing: asyncio.Event, stop: asyncio.Event) -> None:
    """Wait until the herd is worked off, at most HERD_READ_SECONDS (or until `stop`)."""
    if flowing.is_set():
        return
    stopped = asyncio.ensure_future(stop.wait())
    resumed = asyncio.ensure_future(flowing.wait())
    await asyncio.wait((stopped, resumed), timeout=HERD_READ_SECONDS, return_when="FIRST_COMPLETED")
    await _cancel_all(stopped, resumed)


async def _cancel_all(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class StreamHub:
    """The worker's two watchers: every job change, and pending runs being queued."""

    def __init__(
        self,
        store: WorkerStore,
        worker_name: str,
        timetable: Timetable,
        on_unsupported: Callable[[StreamsUnavailable], None],
        metrics: WorkerMetrics = NULL_METRICS,
    ) -> None:
        self.on_unsupported = on_unsupported
        # Cleared while the run loop works off a herd (see HERD_READ_SECONDS).
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.watchers = [
            ChangeWatcher(
                store,
                worker_name=worker_name,
                collection=JOBS,
                pipeline=[],
                on_change=timetable.on_job_change,
                on_resync=timetable.resync,
                flowing=self.flowing,
                metrics=metrics,
            ),
            ChangeWatcher(
                store,
                worker_name=worker_name,
                collection=RUNS,
                pipeline=RUNS_PIPELINE,
                on_change=timetable.on_run_change,
                on_resync=timetable.resync,
                flowing=self.flowing,
                metrics=metrics,
            ),
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._unsupported = False

    def herd(self, working: bool) -> None:
        """The run loop starts (True) or ends (False) working off a herd of due jobs."""
        if working:
            self.flowing.clear()
        else:
            self.flowing.set()

    def start(self, stop: asyncio.Event) -> None:
        """Start watching (in background tasks)."""
        self._tasks = [
            asyncio.create_task(self._watch(watcher, stop), name=f"watch-{watcher.collection}")
            for watcher in self.watchers
        ]

    async def _watch(self, watcher: ChangeWatcher, stop: asyncio.Event) -> None:
        try:
            await watcher.run(stop)
        except StreamsUnavailable as error:
            if self._unsupported:
                return
            self._unsupported = True
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current:
                    task.cancel()
            self.on_unsupported(error)

    async def stop(self) -> None:
        """Stop watching and store the last resume tokens."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for watcher in self.watchers:
            await watcher.save_token()
