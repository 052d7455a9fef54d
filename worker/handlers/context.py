"""Handlers and their context: what a handler receives, and running one claimed attempt
(handler lookup, payload validation, the job's timeout, errors and cancellation)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import bson
import structlog
from bson.errors import BSONError
from pydantic import BaseModel, ValidationError
from structlog.typing import FilteringBoundLogger

from shared.db import Database
from shared.model import JobDocument, RunStatus, RunTrigger, idempotency_key
from shared.registry import JobTypeRegistry, UnknownJobTypeError
from shared.run_identity import RunIdentity
from shared.runs import MAX_ERROR_CHARS, RunReason, error_summary, utc_now
from shared.settings import Settings
from worker.outcomes import Outcome, conclude

if TYPE_CHECKING:
    from worker.claiming import Claimed
    from worker.store import JobView

SHUTDOWN_ERROR: Final = RunReason.WORKER_SHUTDOWN.value
MAX_RESULT_BYTES: Final = 16_384


@dataclass(frozen=True)
class RunContext:
    """Everything a handler may use; handlers never reach the worker's store."""

    job: JobDocument
    run_id: str
    scheduled_for: datetime
    attempt: int
    trigger: RunTrigger
    # `jobId:slot`, stable across retries of the same slot.
    idempotency_key: str
    log: FilteringBoundLogger
    db: Database
    settings: Settings

    @property
    def identity(self) -> RunIdentity:
        """Who this attempt is, as stamped on what the handler sends."""
        return RunIdentity(
            job_id=str(self.job.id),
            job_name=self.job.name,
            run_id=self.run_id,
            attempt=self.attempt,
            scheduled_for=self.scheduled_for,
            idempotency_key=self.idempotency_key,
            timezone=self.job.timezone,
        )


# A handler returns a small JSON-able summary kept on the run record (or None).
Handler = Callable[[RunContext, Any], Awaitable[dict[str, Any] | None]]


class HandlerError(Exception):
    """A handler's expected failure: its message (one line) becomes the run's error."""


class PermanentHandlerError(HandlerError):
    """A failure retries cannot fix (e.g. a redirect to a malformed Location): not retried."""


class PermanentFailure(Exception):
    """The attempt cannot succeed whatever the retries (bad type, payload or document)."""


class AttemptTimedOut(Exception):
    """The job's own timeout expired (a TimeoutError raised by the handler is a failure)."""


class Executor:
    """Builds each run's context and turns whatever the handler does into an Outcome."""

    def __init__(
        self,
        settings: Settings,
        registry: JobTypeRegistry,
        handlers: Mapping[str, Handler],
        db: Database,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.handlers = handlers
        self.db = db

    def timeout_of(self, job: JobView) -> float:
        """The job's `timeoutSeconds` (or the default), capped by CRON_MAX_TIMEOUT_SECONDS."""
        wanted: Any = job.raw.get("timeoutSeconds")
        if not isinstance(wanted, int | float) or wanted <= 0:
            wanted = self.settings.default_timeout_seconds
        return float(min(wanted, self.settings.max_timeout_seconds))

    async def execute(self, claimed: Claimed, started_at: datetime | None = None) -> Outcome:
        """Run the handler; never raises, not even when cancelled (that is a shutdown).

        `started_at`: the handler's start as the caller measured it (the fire lag it reports).
        """
        run, job = claimed.run, claimed.job
        log = structlog.get_logger("worker.run").bind(
            job_id=str(claimed.job_id),
            run_id=str(claimed.run_id),
            owner_id=job.owner_id,
            type=job.type,
            trigger=run.trigger.value,
            attempt=run.attempt,
        )
        # The handler's own start (after the start gate), not the claim's: what the record keeps.
        started_at = started_at or utc_now()
        status, error, result, retryable = RunStatus.SUCCEEDED, None, None, True
        try:
            result = await self._run(claimed, log)
        except (PermanentFailure, PermanentHandlerError) as failure:
            status, error, retryable = RunStatus.FAILED, str(failure), False
        except AttemptTimedOut:
            status, error = RunStatus.TIMEOUT, f"timed out after {self.timeout_of(job):g} s"
        except asyncio.CancelledError:
            status, error = RunStatus.ABANDONED, SHUTDOWN_ERROR
        except Exception as failure:  # a handler may raise anything: it fails the attempt
            status, error = RunStatus.FAILED, error_message(failure)
            if not isinstance(failure, HandlerError):
                log.warning("run.handler_crashed", exc_info=True)
        outcome = conclude(
            run,
            job,
            status,
            started_at=started_at,
            ended_at=utc_now(),
            error=error,
            result=result,
            retryable=retryable,
            retry_at_once=status is RunStatus.ABANDONED,
        )
        scheduled_for = run.scheduled_for
        # A failed or timed-out attempt is what an operator filters the logs for.
        report = log.warning if status in {RunStatus.FAILED, RunStatus.TIMEOUT} else log.info
        report(
            "run.finished",
            status=status.value,
            duration_ms=outcome.duration_ms,
            scheduled_for=scheduled_for.isoformat(),
            lag_ms=int((started_at - scheduled_for).total_seconds() * 1000),
            error=error,
            retry_at=outcome.retry["notBefore"].isoformat() if outcome.retry else None,
        )
        return outcome

    async def _run(self, claimed: Claimed, log: FilteringBoundLogger) -> dict[str, Any] | None:
        handler, payload, job = self._prepare(claimed)
        run = claimed.run
        context = RunContext(
            job=job,
            run_id=str(claimed.run_id),
            scheduled_for=run.scheduled_for,
            attempt=run.attempt,
            trigger=run.trigger,
            idempotency_key=idempotency_key(claimed.job_id, run.slot),
            log=log,
            db=self.db,
            settings=self.settings,
        )
        timer = asyncio.timeout(self.timeout_of(claimed.job))
        try:
            async with timer:
                result = await handler(context, payload)
        except TimeoutError:
            if timer.expired():
                raise AttemptTimedOut from None
            raise
        return summary_of(result)

    def _prepare(self, claimed: Claimed) -> tuple[Handler, BaseModel, JobDocument]:
        """The handler, validated payload and parsed job; PermanentFailure if unusable."""
        type_name = claimed.job.type
        try:
            job_type = self.registry.get(type_name)
        except UnknownJobTypeError as error:
            raise PermanentFailure(
                f"job type {type_name!r} is unknown or disabled"
                f" (allowed: {', '.join(error.allowed) or 'none'})"
            ) from None
        handler = self.handlers.get(type_name)
        if handler is None:
            raise PermanentFailure(f"no handler is registered for job type {type_name!r}")
        try:
            job = JobDocument.from_mongo(claimed.job.raw)
            payload = job_type.payload_model.model_validate(job.payload)
        except ValidationError as error:
            raise PermanentFailure(f"invalid payload: {first_problem(error)}") from None
        return handler, payload, job


def error_message(error: BaseException) -> str:
    """The first line of the message (no traceback), prefixed by the class unless expected."""
    return error_summary(error, with_class=not isinstance(error, HandlerError))


def first_problem(error: ValidationError) -> str:
    """`field: message` of the first validation problem."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "payload"
    return f"{where}: {problem['msg']}"[:MAX_ERROR_CHARS]


def summary_of(result: object) -> dict[str, Any] | None:
    """What is kept of a handler's return value: a small BSON-able dict."""
    if result is None:
        return None
    if not isinstance(result, dict):
        return {"value": repr(result)[:MAX_ERROR_CHARS]}
    try:
        size = len(bson.encode(result))
    except (BSONError, TypeError, ValueError, OverflowError):
        return {"unstorable": repr(result)[:MAX_ERROR_CHARS]}
    return result if size <= MAX_RESULT_BYTES else {"truncated": True, "bytes": size}
