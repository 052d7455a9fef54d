"""Waiting out database outages: capped exponential backoff, outage logs, retry-until-stopped.

Every outage a component sees is logged as `db.unavailable` when it starts (repeated every
WARN_EVERY_SECONDS) and `db.available` when that component's next operation succeeds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import structlog
from pymongo.errors import ConnectionFailure, PyMongoError

from shared.runs import error_summary

T = TypeVar("T")

FIRST_DELAY_SECONDS: Final = 0.25
MAX_DELAY_SECONDS: Final = 5.0
# Repeat the "still unavailable" warning at most this often during one outage.
WARN_EVERY_SECONDS: Final = 30.0

log = structlog.get_logger("worker.db")


def brief(error: BaseException) -> str:
    """An error for a log line: its first line, without PyMongo's topology description."""
    return error_summary(error, with_class=False)


class Stopped(Exception):
    """The worker is stopping: the retried operation was given up."""


def is_transient(error: BaseException) -> bool:
    """Whether a database error is worth retrying (the server is unreachable or restarting)."""
    if isinstance(error, ConnectionFailure):
        return True
    return isinstance(error, PyMongoError) and error.has_error_label("RetryableWriteError")


class Backoff:
    """Delays 0.25 s, 0.5 s, 1 s ... up to 5 s (with jitter), and the outage's log lines."""

    def __init__(
        self,
        operation: str = "database",
        first: float = FIRST_DELAY_SECONDS,
        ceiling: float = MAX_DELAY_SECONDS,
    ) -> None:
        self.operation = operation
        self.first = first
        self.ceiling = ceiling
        self.failures = 0
        self._last_warning = 0.0
        self._outage_began: float | None = None

    def next_delay(self) -> float:
        """The delay before the next attempt; grows with each call until `reset()`."""
        self.failures += 1
        ceiling = min(self.ceiling, self.first * 2 ** (self.failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Forget past failures."""
        self.failures = 0

    def should_warn(self) -> bool:
        """True on an outage's first failure (before any wait), then every WARN_EVERY_SECONDS."""
        now = time.monotonic()
        if self.failures == 0 or now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            return True
        return False

    def failed(self, error: BaseException, **context: object) -> None:
        """A transient failure: `db.unavailable` at the first one and every WARN_EVERY_SECONDS."""
        now = time.monotonic()
        if self._outage_began is None:
            self._outage_began = now
        elif now - self._last_warning < WARN_EVERY_SECONDS:
            return
        self._last_warning = now
        log.warning("db.unavailable", operation=self.operation, error=brief(error), **context)

    def succeeded(self) -> None:
        """The operation worked: `db.available` if it had failed before; forget the failures."""
        if self._outage_began is not None:
            log.info(
                "db.available",
                operation=self.operation,
                outage_seconds=round(time.monotonic() - self._outage_began, 1),
            )
            self._outage_began = None
        self.reset()

    async def wait(self, stop: asyncio.Event | None = None) -> bool:
        """Sleep the next delay; return False at once if `stop` is set (before or during)."""
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return True
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False


async def persist(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    stop: asyncio.Event | None = None,
) -> T:
    """Run `operation` until it succeeds, backing off on transient database errors.

    Raises Stopped if `stop` is set while waiting; other errors propagate at once. Use it only
    for idempotent operations: a transient error may hide a write the server did apply.
    """
    backoff = Backoff(what)
    while True:
        try:
            result = await operation()
        except PyMongoError as error:
            if not is_transient(error):
                raise
            backoff.failed(error)
            if not await backoff.wait(stop):
                raise Stopped(what) from error
            continue
        backoff.succeeded()
        return result
