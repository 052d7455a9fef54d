"""`/jobs/{id}/test` (one real run outside the job's bookkeeping) and `/jobs/{id}/backfill`
(admins: queue a past window's slots once each)."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

import structlog
from litestar import Controller, post
from litestar.params import JSONBody

from api.controllers.jobs import JobId, owner_scope
from api.dependencies import CallerDep, ServicesDep
from api.errors import ApiError, field_error, invalid
from api.guards import refuses_job_callers, require_type_permission, requires_admin, requires_caller
from api.metrics import RUNS_QUEUED
from api.openapi import problems
from api.params import parse_job_id
from api.schemas.backfill import BackfillIn, BackfillOut
from api.schemas.jobs import RunNowOut
from shared import backfill, jobs_repo
from shared.model import JobDocument, RunTrigger

log = structlog.get_logger(__name__)


class RunRequestController(Controller):
    """Runs an owner or an admin asks for besides the schedule's."""

    path = "/jobs"
    tags = ["jobs"]
    guards = [requires_caller]

    @post(
        "/{job_id:str}/test",
        status_code=HTTPStatus.ACCEPTED,
        summary="Run a job once as a test",
        responses=problems(403, 404, 409),
        guards=[refuses_job_callers],
    )
    async def test_run(self, job_id: JobId, caller: CallerDep, services: ServicesDep) -> RunNowOut:
        """202 with the queued run (`trigger: test`): one real attempt, queued like run-now,
        that leaves the job's `status`, `lastRunAt`, `lastError`, counters and notifications
        alone and is never retried; a paused job may be tested. 409 like run-now (overlap
        `skip`: a run in progress or a manual or test run already queued)."""
        oid = parse_job_id(job_id)
        job = await jobs_repo.get_job(services.db, oid, owner_scope(caller))
        if job is None:
            raise jobs_repo.JobNotFoundError(oid)
        require_type_permission(services.registry, job.type, caller)
        run_id = await jobs_repo.queue_run_now(services.db, job, trigger=RunTrigger.TEST)
        log.info("api.test_run_queued", job_id=job_id, run_id=str(run_id), caller=caller.sub)
        RUNS_QUEUED.inc()
        return RunNowOut(run_id=str(run_id), job_id=str(job.id), status="pending")

    @post(
        "/{job_id:str}/backfill",
        status_code=HTTPStatus.ACCEPTED,
        summary="Queue a past window's slots (admins)",
        responses=problems(403, 404, 409, 422),
        guards=[requires_admin, refuses_job_callers],
    )
    async def backfill_job(
        self, job_id: JobId, data: JSONBody[BackfillIn], services: ServicesDep, caller: CallerDep
    ) -> BackfillOut:
        """202: each slot of the job's schedule in [`from`, `to`) queued with
        `trigger: backfill` and its real `scheduledFor`, once per slot however often asked
        (`alreadyPresent` counts the others). At most 1,000 slots per request; a window in the
        future, `from` not before `to`, or too many slots: 422 naming the field. A paused job:
        409 (resume it first)."""
        oid = parse_job_id(job_id)
        job = await jobs_repo.get_job(services.db, oid)
        if job is None:
            raise jobs_repo.JobNotFoundError(oid)
        if not job.enabled:
            raise ApiError(HTTPStatus.CONFLICT, "the job is paused: resume it, then backfill")
        slots = _window_slots(job, data, datetime.now(UTC))
        result = await backfill.queue_backfill(services.db, job, slots)
        log.info(
            "api.backfill_queued",
            job_id=job_id,
            owner_id=job.owner_id,
            caller=caller.sub,
            slots=result.slots,
            queued=result.queued,
        )
        RUNS_QUEUED.inc(result.queued)
        return BackfillOut(
            job_id=str(job.id),
            slots=result.slots,
            queued=result.queued,
            already_present=result.already_present,
        )


def _window_slots(job: JobDocument, window: BackfillIn, now: datetime) -> list[datetime]:
    """The job's slots in the window; 422 naming `from` or `to` for an unusable window."""
    try:
        schedule = jobs_repo.stored_schedule(job)
    except ValueError as error:  # a stored schedule that cannot be evaluated
        detail = f"the job's schedule cannot be evaluated: {error}"
        raise ApiError(HTTPStatus.CONFLICT, detail) from None
    try:
        return backfill.window_slots(schedule, window.start, window.end, now)
    except backfill.WindowError as error:
        raise invalid([field_error(error.field, error.message)]) from None
