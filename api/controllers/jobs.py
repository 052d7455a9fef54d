"""`/jobs`: create, list, read, replace, patch, delete, run now."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, cast

import structlog
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.params import FromQuery, HeaderParameter, JSONBody, PathParameter, QueryParameter

from api.dependencies import CallerDep, DatabaseDep, ServicesDep
from api.errors import ApiError
from api.guards import (
    creating_owner,
    refuses_job_callers,
    require_type_permission,
    requires_caller,
)
from api.metrics import JOBS_CREATED, JOBS_DELETED, RUNS_QUEUED
from api.openapi import BASE_PATH, ETAG_HEADER, LOCATION_HEADER, NOT_MODIFIED, problems
from api.params import (
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    etag,
    parse_cursor,
    parse_if_match,
    parse_job_id,
)
from api.preconditions import if_none_match_hits, judge_if_match
from api.schemas.jobs import JobCreate, JobOut, JobPage, JobPatch, JobReplace, RunNowOut
from api.validation import merge_patch, spec_from_body
from shared import jobs_repo
from shared.model import JobDocument, JobStatus

log = structlog.get_logger(__name__)

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='Only write if the job is still at this version (its ETag, e.g. "3").',
    ),
]
# No length limit here: a constraint would answer 422; `parse_job_id` answers 404 for any
# malformed id, whatever its length.
JobId = Annotated[str, PathParameter(description="The job id (malformed ids answer 404).")]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        required=False,
        description='Answer 304 without a body if the job is still at this ETag (e.g. "3").',
    ),
]


def owner_scope(caller: CallerDep) -> str | None:
    """The owner filter for this caller: None (everyone) for admins."""
    return None if caller.is_admin else caller.sub


def job_response(
    job: JobDocument, status: int = HTTPStatus.OK, headers: dict[str, str] | None = None
) -> Response[JobOut]:
    """The job with its ETag."""
    return Response(
        JobOut.of(job), status_code=status, headers={"ETag": etag(job.version), **(headers or {})}
    )


def _location(services: ServicesDep, job: JobDocument) -> str:
    """CRON_PUBLIC_BASE_URL + the job's path, or a relative reference; never from `Host`."""
    path = f"{BASE_PATH}/jobs/{job.id}"
    return services.settings.public_base_url.rstrip("/") + path


class JobController(Controller):
    """The caller's jobs (admins: everybody's)."""

    path = "/jobs"
    tags = ["jobs"]
    guards = [requires_caller]

    @post(
        "/",
        status_code=HTTPStatus.CREATED,
        summary="Create a job",
        responses=problems(400, 403, 409, 413, 422),
        response_headers=[ETAG_HEADER, LOCATION_HEADER],
    )
    async def create_job(
        self,
        data: JSONBody[JobCreate],
        caller: CallerDep,
        services: ServicesDep,
    ) -> Response[JobOut]:
        """201 with the job and its Location; 409 for a duplicate name or a full quota."""
        owner_id = creating_owner(data.owner_id, caller)
        spec = services.validator.validate(
            spec_from_body(data, services.settings, by_admin=caller.is_admin), caller
        )
        quota = None if caller.is_admin else services.settings.max_jobs_per_owner
        job = await jobs_repo.create_job(services.db, spec, owner_id=owner_id, max_jobs=quota)
        log.info("api.job_created", job_id=str(job.id), owner_id=owner_id, caller=caller.sub)
        JOBS_CREATED.labels(job.type).inc()
        location = _location(services, job)
        return job_response(job, HTTPStatus.CREATED, {"Location": location})

    @get("/", summary="List jobs", responses=problems(403, 422))
    async def list_jobs(
        self,
        *,
        caller: CallerDep,
        db: DatabaseDep,
        limit: Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT,
        cursor: Annotated[
            str | None, QueryParameter(description="`nextCursor` of the previous page.")
        ] = None,
        enabled: FromQuery[bool | None] = None,
        job_type: Annotated[str | None, QueryParameter(name="type", max_length=64)] = None,
        status: FromQuery[JobStatus | None] = None,
        owner_id: Annotated[
            str | None, QueryParameter(name="ownerId", description="Admins only.", max_length=256)
        ] = None,
    ) -> JobPage:
        """The caller's jobs in stable (creation) order, `limit` per page."""
        if owner_id is not None and owner_id != caller.sub and not caller.is_admin:
            raise ApiError(HTTPStatus.FORBIDDEN, "only admins may list another owner's jobs")
        jobs = await jobs_repo.list_jobs(
            db,
            owner_id=owner_id if caller.is_admin else caller.sub,
            limit=limit + 1,
            after=parse_cursor(cursor),
            enabled=enabled,
            job_type=job_type,
            status=status,
        )
        page = jobs[:limit]
        next_cursor = str(page[-1].id) if len(jobs) > limit else None
        return JobPage(items=[JobOut.of(job) for job in page], next_cursor=next_cursor)

    @get(
        "/{job_id:str}",
        summary="Get a job",
        responses={**problems(404), 304: NOT_MODIFIED},
        response_headers=[ETAG_HEADER],
    )
    async def get_job(
        self,
        job_id: JobId,
        caller: CallerDep,
        db: DatabaseDep,
        if_none_match: IfNoneMatch = None,
    ) -> Response[JobOut]:
        """One job with its ETag; 304 (no body) if `If-None-Match` names the current ETag."""
        job = await jobs_repo.get_job(db, parse_job_id(job_id), owner_scope(caller))
        if job is None:
            raise jobs_repo.JobNotFoundError(parse_job_id(job_id))
        if if_none_match_hits(if_none_match, etag(job.version)):
            # No body; typed as the 200 answer so that the OpenAPI document keeps JobOut.
            not_modified = Response(
                None, status_code=HTTPStatus.NOT_MODIFIED, headers={"ETag": etag(job.version)}
            )
            return cast("Response[JobOut]", not_modified)
        return job_response(job)

    @put(
        "/{job_id:str}",
        summary="Replace a job",
        before_request=judge_if_match,
        responses=problems(400, 403, 404, 409, 412, 413, 422),
        response_headers=[ETAG_HEADER],
    )
    async def replace_job(
        self,
        job_id: JobId,
        data: JSONBody[JobReplace],
        caller: CallerDep,
        services: ServicesDep,
        if_match: IfMatch = None,
    ) -> Response[JobOut]:
        """Full replace, validated as a new job; recomputes `nextRunAt` if the schedule moved."""
        body = spec_from_body(data, services.settings, by_admin=caller.is_admin)
        # Bad input is a 422 before the job is read; whether an instant lies in the past
        # depends on the stored job (one it already had may), so that is judged below.
        services.validator.validate(body, caller, before=body)

        def replaced(current: JobDocument) -> jobs_repo.JobSpec:
            require_type_permission(services.registry, current.type, caller)
            before = jobs_repo.JobSpec.of(current)
            return services.validator.validate(body, caller, before=before)

        job = await jobs_repo.update_job(
            services.db,
            parse_job_id(job_id),
            replaced,
            owner_id=owner_scope(caller),
            expected_version=parse_if_match(if_match),
        )
        log.info("api.job_replaced", job_id=job_id, owner_id=job.owner_id, caller=caller.sub)
        return job_response(job)

    @patch(
        "/{job_id:str}",
        summary="Change some fields (pause / resume with `enabled`)",
        before_request=judge_if_match,
        responses=problems(400, 403, 404, 409, 412, 413, 422),
        response_headers=[ETAG_HEADER],
    )
    async def patch_job(
        self,
        job_id: JobId,
        data: JSONBody[JobPatch],
        caller: CallerDep,
        services: ServicesDep,
        if_match: IfMatch = None,
    ) -> Response[JobOut]:
        """Applies the sent fields; the merged job is re-validated; pausing sets `paused`."""
        changes = data.changes()

        def merged(current: JobDocument) -> jobs_repo.JobSpec:
            require_type_permission(services.registry, current.type, caller)
            before = jobs_repo.JobSpec.of(current)
            spec = merge_patch(before, changes, by_admin=caller.is_admin)
            return services.validator.validate(spec, caller, before=before)

        job = await jobs_repo.update_job(
            services.db,
            parse_job_id(job_id),
            merged,
            owner_id=owner_scope(caller),
            expected_version=parse_if_match(if_match),
        )
        log.info("api.job_patched", job_id=job_id, fields=sorted(changes), caller=caller.sub)
        return job_response(job)

    @delete(
        "/{job_id:str}",
        status_code=HTTPStatus.NO_CONTENT,
        summary="Delete a job",
        before_request=judge_if_match,
        responses=problems(400, 403, 404, 412),
    )
    async def delete_job(
        self, job_id: JobId, caller: CallerDep, services: ServicesDep, if_match: IfMatch = None
    ) -> None:
        """204; queued runs are skipped, a run in progress may finish."""
        admin_only = [t.name for t in services.registry if t.admin_only]
        job = await jobs_repo.delete_job(
            services.db,
            parse_job_id(job_id),
            owner_id=owner_scope(caller),
            expected_version=parse_if_match(if_match),
            protected_types=() if caller.is_admin else admin_only,
        )
        log.info("api.job_deleted", job_id=job_id, owner_id=job.owner_id, caller=caller.sub)
        JOBS_DELETED.inc()

    @post(
        "/{job_id:str}/run-now",
        status_code=HTTPStatus.ACCEPTED,
        summary="Run a job now",
        responses=problems(403, 404, 409),
        guards=[refuses_job_callers],
    )
    async def run_now(self, job_id: JobId, caller: CallerDep, services: ServicesDep) -> RunNowOut:
        """202 with the queued run; 409 if it is running and overlaps are forbidden, or if the
        request comes from a running job."""
        oid = parse_job_id(job_id)
        job = await jobs_repo.get_job(services.db, oid, owner_scope(caller))
        if job is None:
            raise jobs_repo.JobNotFoundError(oid)
        require_type_permission(services.registry, job.type, caller)
        run_id = await jobs_repo.queue_run_now(services.db, job)
        log.info("api.run_queued", job_id=job_id, run_id=str(run_id), caller=caller.sub)
        RUNS_QUEUED.inc()
        return RunNowOut(run_id=str(run_id), job_id=str(job.id), status="pending")
