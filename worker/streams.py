"""Change streams on `cron_jobs` and `cron_runs`: resume from stored tokens, resync when lost."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Final

import structlog
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.errors import OperationFailure, PyMongoError

from shared.db import JOBS, RUNS, Document
from shared.model import RunStatus, RunTrigger
from shared.runs import utc_now
from worker.backoff import Backoff, Stopped, brief, persist
from worker.store import WorkerStore
from worker.timetable import Timetable

MAX_AWAIT_MS: Final = 1000
# A getMore that returns empty much sooner than MAX_AWAIT_MS means the server does not wait
# (see the README's known differences): back off locally instead of spinning.
# The pause doubles while the stream stays idle, up to what MongoDB itself waits per getMore, so
# an idle worker makes at most one getMore per stream and second (a real server answers such a
# getMore only after MAX_AWAIT_MS: there the pause never happens).
IDLE_FIRST_SECONDS: Final = 0.05
IDLE_MAX_SECONDS: Final = MAX_AWAIT_MS / 1000
TOKEN_SAVE_SECONDS: Final = 1.0
# Under a steady flow of changes every getMore returns at once: reading them in batches at most
# this often bounds the getMores per stream (the worker's own writes are most of the flow).
BATCH_PACE_SECONDS: Final = 0.1

log = structlog.get_logger("worker.streams")

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
    ) -> None:
        self.store = store
        self.collection = collection
        self.pipeline = pipeline
        self.on_change = on_change
        self.on_resync = on_resync
        self.key = f"{worker_name}:{collection}"
        self.token: Any = None
        self._saved: Any = None
        self._saved_at = 0.0
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
        self.token = None

    async def _wait_out(self, error: PyMongoError, backoff: Backoff, stop: asyncio.Event) -> None:
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
            self.log.warning("db.unavailable", operation="save resume token", error=brief(error))
            return
        self._saved, self._saved_at = self.token, time.monotonic()


def _locally_buffered(stream: AsyncChangeStream[Document]) -> int | None:
    """Changes already fetched and not yet returned; None if PyMongo's internals differ.

    PyMongo has no public way to tell whether the next `try_next()` will run a getMore.
    """
    buffered = getattr(getattr(stream, "_cursor", None), "_data", None)
    return len(buffered) if buffered is not None else None


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
    ) -> None:
        self.on_unsupported = on_unsupported
        self.watchers = [
            ChangeWatcher(
                store,
                worker_name=worker_name,
                collection=JOBS,
                pipeline=[],
                on_change=timetable.on_job_change,
                on_resync=timetable.resync,
            ),
            ChangeWatcher(
                store,
                worker_name=worker_name,
                collection=RUNS,
                pipeline=RUNS_PIPELINE,
                on_change=timetable.on_run_change,
                on_resync=timetable.resync,
            ),
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._unsupported = False

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
