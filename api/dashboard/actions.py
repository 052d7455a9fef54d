"""What an admin can do to a job, through the same repository calls and rules as the REST API.

Pause/resume is the API's `PATCH {"enabled": ...}` (merged, re-validated under the admin's
rules, version-checked); run-now and delete are the API's calls with the admin's (unscoped)
view. Every action is logged with the admin's `sub`.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import structlog
from bson import ObjectId

from api.auth import Principal
from api.dependencies import Services
from api.errors import ApiError
from api.validation import merge_patch
from shared import jobs_repo
from shared.model import JobDocument, RunTrigger

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ActionFailure(Exception):
    """An action the repository refused, with the status and message the admin sees."""

    status: int
    message: str


def explain(error: Exception) -> ActionFailure:
    """The admin-facing status and message of a refused action."""
    if isinstance(error, jobs_repo.VersionConflictError):
        if error.expected is None:
            return ActionFailure(HTTPStatus.CONFLICT, "The job kept changing; try again.")
        return ActionFailure(
            HTTPStatus.PRECONDITION_FAILED,
            f"The job changed since this page was loaded (it is now at version {error.actual}, "
            f"the page showed {error.expected}). Nothing was done: reload and try again.",
        )
    if isinstance(error, jobs_repo.RunInProgressError):
        return ActionFailure(
            HTTPStatus.CONFLICT,
            "Not queued: the job is running or already has a queued run, and its overlap "
            "policy is skip.",
        )
    if isinstance(error, jobs_repo.JobNotFoundError):
        return ActionFailure(HTTPStatus.NOT_FOUND, "No such job (it may have been deleted).")
    if isinstance(error, ApiError):
        return ActionFailure(error.status, error.detail)
    return ActionFailure(HTTPStatus.CONFLICT, str(error))


REFUSALS = (
    jobs_repo.VersionConflictError,
    jobs_repo.RunInProgressError,
    jobs_repo.JobNotFoundError,
    jobs_repo.DuplicateJobNameError,
    jobs_repo.QuotaExceededError,
    ApiError,
)


async def set_enabled(
    services: Services,
    admin: Principal,
    job_id: ObjectId,
    *,
    enabled: bool,
    expected_version: int | None,
) -> JobDocument:
    """Pause or resume, exactly as `PATCH /jobs/{id}` with `{"enabled": ...}` does."""
    changes = {"enabled": enabled}

    def merged(current: JobDocument) -> jobs_repo.JobSpec:
        spec = merge_patch(jobs_repo.JobSpec.of(current), changes, by_admin=admin.is_admin)
        return services.validator.validate(spec, admin)

    try:
        job = await jobs_repo.update_job(
            services.db, job_id, merged, owner_id=None, expected_version=expected_version
        )
    except REFUSALS as error:
        raise explain(error) from error
    event = "dashboard.job_resumed" if enabled else "dashboard.job_paused"
    log.info(event, job_id=str(job_id), owner_id=job.owner_id, caller=admin.sub)
    return job


async def run_now(
    services: Services,
    admin: Principal,
    job_id: ObjectId,
    *,
    trigger: RunTrigger = RunTrigger.MANUAL,
) -> ObjectId:
    """Queue a manual run, exactly as `POST /jobs/{id}/run-now` does (`trigger` TEST: a test
    run, as `POST /jobs/{id}/test` does)."""
    try:
        job = await jobs_repo.get_job(services.db, job_id)
        if job is None:
            raise jobs_repo.JobNotFoundError(job_id)
        run_id = await jobs_repo.queue_run_now(services.db, job, trigger=trigger)
    except REFUSALS as error:
        raise explain(error) from error
    log.info(
        "dashboard.run_queued",
        job_id=str(job_id),
        run_id=str(run_id),
        owner_id=job.owner_id,
        caller=admin.sub,
        trigger=trigger.value,
    )
    return run_id


async def delete(
    services: Services, admin: Principal, job_id: ObjectId, *, expected_version: int | None
) -> JobDocument:
    """Delete, exactly as `DELETE /jobs/{id}` (with If-Match) does."""
    try:
        job = await jobs_repo.delete_job(
            services.db, job_id, owner_id=None, expected_version=expected_version
        )
    except REFUSALS as error:
        raise explain(error) from error
    log.info("dashboard.job_deleted", job_id=str(job_id), owner_id=job.owner_id, caller=admin.sub)
    return job
