"""How attempts end: the outcome of an attempt, the retry policy, and the buffered writer.

Finished attempts are written in batches (one bulk write per collection) and kept through
database outages until written.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import structlog
from bson import ObjectId
from pymongo.errors import PyMongoError

from shared.db import Document
from shared.model import JobStatus, RetryPolicy, RunStatus, moves_job_bookkeeping
from shared.runs import error_summary, retry_run
from worker.backoff import Backoff, is_transient
from worker.completion import Completion, completion_of, is_scheduled
from worker.metrics import NULL_METRICS, WorkerMetrics
from worker.notify_policy import StreakStep, streak_step

if TYPE_CHECKING:
    from worker.store import JobView, RunView, WorkerStore

FAILED_STATUSES: Final = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.ABANDONED})
# Finished runs wait this long for company: one bulk write per collection per batch.
FLUSH_DELAY_SECONDS: Final = 0.05
FLUSH_BATCH: Final = 500

log = structlog.get_logger("worker.finish")


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, and what that means for the job and for the next attempt."""

    run_id: ObjectId
    job_id: ObjectId
    status: RunStatus
    started_at: datetime
    ended_at: datetime
    error: str | None = None
    result: dict[str, Any] | None = None
    # The next attempt, inserted as a pending run, if this one failed with attempts left.
    retry: Document | None = None
    # The job's status afterwards (unless it is paused); None leaves the job untouched.
    job_status: JobStatus | None = None
    # False when the run document was already finalised (the reaper's conditional update).
    update_run: bool = True
    # A scheduled slot that succeeded: counted in the job's `scheduledSuccessCount` (maxRuns).
    counts_success: bool = False
    # This attempt completes its job (its last slot, or the maxRuns-th success), conditionally.
    completes: Completion | None = None
    # A slot outcome that moves the job's failure streak (and may owe a notice), else None.
    streak: StreakStep | None = None

    @property
    def duration_ms(self) -> int:
        """Wall-clock duration of the attempt."""
        return max(0, int((self.ended_at - self.started_at) / timedelta(milliseconds=1)))

    @property
    def failed(self) -> bool:
        """Whether the attempt counts as a failure."""
        return self.status in FAILED_STATUSES


def has_attempts_left(attempt: int, policy: RetryPolicy) -> bool:
    """Whether attempt number `attempt` may be followed by another one."""
    return attempt < policy.max_attempts


def retry_delay(
    failed_attempt: int,
    policy: RetryPolicy,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before the attempt after `failed_attempt` (1-based): exponential, jittered.

    Drawn uniformly between `backoffSeconds` and a ceiling that starts at twice
    `backoffSeconds` and doubles per attempt, capped by `backoffMaxSeconds`: retry n waits
    between `backoffSeconds` and min(`backoffSeconds` x 2^n, `backoffMaxSeconds`). Never less
    than `backoffSeconds` (nor more than the cap), and already the first retry is spread, so
    jobs that fail together do not retry in lockstep.
    """
    floor = min(policy.backoff_seconds, policy.backoff_max_seconds)
    exponent = max(1, min(failed_attempt, 30))
    ceiling = max(floor, min(policy.backoff_max_seconds, policy.backoff_seconds * 2**exponent))
    return uniform(floor, ceiling)


def conclude(
    run: RunView,
    job: JobView | None,
    status: RunStatus,
    *,
    started_at: datetime,
    ended_at: datetime,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    retryable: bool = True,
    retry_at_once: bool = False,
) -> Outcome:
    """The outcome of an attempt, with the next attempt queued if it failed and may retry.

    Without its job (deleted) an attempt is never retried. A test run is one attempt that
    leaves its job alone: no retry, no job update (`job_status` None).
    """
    retry = None
    failed = status in FAILED_STATUSES
    booked = moves_job_bookkeeping(run.trigger)
    policy = job.options.retry if job is not None and booked else None
    if failed and retryable and policy is not None and has_attempts_left(run.attempt, policy):
        delay = 0.0 if retry_at_once else retry_delay(run.attempt, policy)
        not_before = ended_at + timedelta(seconds=delay)
        retry = retry_run(run.raw, not_before=not_before, now=ended_at)
    job_status = JobStatus.FAILED if failed and retry is None else JobStatus.IDLE
    succeeded = status is RunStatus.SUCCEEDED
    streak = streak_step(run, job, status, failed=failed, retry_queued=retry is not None)
    return Outcome(
        run_id=run.id,
        job_id=run.job_id,
        status=status,
        started_at=started_at,
        ended_at=ended_at,
        error=error,
        result=result,
        retry=retry,
        job_status=job_status if booked else None,
        counts_success=succeeded and is_scheduled(run),
        completes=completion_of(run, job, status, retried=retry is not None) if booked else None,
        streak=streak if booked else None,
    )


class Finisher:
    """Collects outcomes and writes them; survives database outages without losing any."""

    def __init__(
        self,
        store: WorkerStore,
        delay: float = FLUSH_DELAY_SECONDS,
        metrics: WorkerMetrics = NULL_METRICS,
        on_written: Callable[[Sequence[Outcome]], None] | None = None,
    ) -> None:
        self.store = store
        # Told of every batch once written (the notifier takes it from there, off this path).
        self.on_written = on_written
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
            backoff = Backoff("finish runs")
            while self._buffer:
                batch = self._buffer[:FLUSH_BATCH]
                try:
                    late = await self.store.write_outcomes(batch)
                except PyMongoError as error:
                    self.metrics.db_error("finish")
                    if not is_transient(error):
                        await self._write_one_by_one(batch)
                        continue
                    backoff.failed(error, buffered=len(self._buffer))
                    if not await backoff.wait(stop):
                        return False
                    continue
                del self._buffer[: len(batch)]
                backoff.succeeded()
                if self.on_written is not None:
                    self.on_written(batch)
                for outcome in late:
                    log.warning(
                        "lease.lost",
                        run_id=str(outcome.run_id),
                        job_id=str(outcome.job_id),
                        status=outcome.status.value,
                        message="the run was reaped while it executed here; its record now "
                        "holds the real outcome",
                    )
        return True

    async def _write_one_by_one(self, batch: list[Outcome]) -> None:
        """Isolate an outcome the server refuses for good; keep the rest for the next try."""
        for outcome in batch:
            try:
                await self.store.write_outcomes([outcome])
            except PyMongoError as error:
                if is_transient(error):
                    return
                log.error(
                    "run.finish_refused", run_id=str(outcome.run_id), error=error_summary(error)
                )
            self._buffer.remove(outcome)
