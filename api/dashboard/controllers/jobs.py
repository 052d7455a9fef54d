"""Job pages (list, detail, run history, delete confirmation) and the actions on a job."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Final

from bson import ObjectId
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import FromPath, QueryParameter

from api.dashboard import actions
from api.dashboard.errors import is_fetch
from api.dashboard.queries import PAGE_SIZE, SEARCH_MAX_LENGTH, JobSearch, JobSort, search_jobs
from api.dashboard.render import SECURITY_HEADERS, render, see_other
from api.dependencies import CallerDep, ServicesDep
from api.params import parse_job_id
from shared import jobs_repo
from shared.model import JobDocument, JobStatus, RunTrigger
from shared.schedule import ScheduleError

PREVIEW_COUNT: Final = 10
RUNS_SHOWN: Final = 20
REPORTS_SHOWN: Final = 10
REPORT_TYPE: Final = "generateReport"
# Fixed messages after a redirect (never text taken from the URL).
NOTICES: Final = {
    "paused": "Paused: no slot will run until it is resumed.",
    "resumed": "Resumed: the next slot is computed from now.",
    "queued": "Run queued: a worker picks it up within seconds.",
    "tested": "Test run queued: it runs once and leaves the job's status and counters alone.",
    "deleted": "Deleted. Queued runs were skipped; a run in progress may still finish.",
}

JobIdPath = FromPath[str]
SearchText = Annotated[str, QueryParameter(name="q", max_length=SEARCH_MAX_LENGTH)]
Owner = Annotated[str, QueryParameter(name="owner", max_length=256)]
TypeName = Annotated[str, QueryParameter(name="type", max_length=64)]
StatusName = Annotated[str, QueryParameter(name="status", max_length=16)]
SortName = Annotated[str, QueryParameter(name="sort", max_length=16)]
Page = Annotated[int, QueryParameter(name="page", ge=1, le=100_000)]
Notice = Annotated[str, QueryParameter(name="notice", max_length=16)]
Before = Annotated[str, QueryParameter(name="before", max_length=24)]


def _choice(kind: type[JobStatus] | type[JobSort], value: str, name: str) -> Any:
    try:
        return kind(value) if value else None
    except ValueError:
        raise ClientException(f"unknown {name} {value!r}") from None


def _preview(job: JobDocument, now: datetime) -> tuple[list[datetime], str | None]:
    """The next fire times from the same schedule interface the worker uses (a cron's DST
    rules, an interval's grid from its anchor, a one-off's instant), within the job's bounds
    (none once it is completed, at most the runs `maxRuns` leaves)."""
    if job.status is JobStatus.COMPLETED:
        return [], None
    left = PREVIEW_COUNT
    if job.max_runs is not None:
        left = min(left, job.max_runs - job.scheduled_success_count)
    try:
        schedule = jobs_repo.stored_schedule(job)
        return (schedule.next_times(now, left) if left > 0 else []), None
    except ScheduleError as error:
        return [], str(error)


async def _form_version(request: Request[Any, Any, Any]) -> int | None:
    raw = str((await request.form()).get("version") or "")
    return int(raw) if raw.isdigit() else None


class JobPagesController(Controller):
    """Finding a job and looking at it."""

    path = "/jobs"

    @get("/")
    async def job_list(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        q: SearchText = "",
        owner: Owner = "",
        job_type: TypeName = "",
        status: StatusName = "",
        sort: SortName = "",
        page: Page = 1,
        notice: Notice = "",
    ) -> Response[Any]:
        """Search by name, owner, type and status; sorted; PAGE_SIZE per page."""
        search = JobSearch(
            name=q.strip(),
            owner=owner.strip(),
            job_type=job_type.strip(),
            status=_choice(JobStatus, status, "status"),
            sort=_choice(JobSort, sort, "sort") or JobSort.CREATED,
            page=page,
        )
        result = await search_jobs(services.db, search)
        return render(
            request,
            "jobs.html.j2",
            search=search,
            result=result,
            page_size=PAGE_SIZE,
            types=services.registry.names(),
            statuses=[status.value for status in JobStatus],
            sorts=[sort.value for sort in JobSort],
            notice=NOTICES.get(notice),
        )

    @get("/{job_id:str}")
    async def job_detail(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        job_id: JobIdPath,
        notice: Notice = "",
        before: Before = "",
    ) -> Response[Any]:
        """Definition, upcoming fire times, run history, reports, actions."""
        return await detail_page(
            request, services, parse_job_id(job_id), NOTICES.get(notice), before
        )

    @get("/{job_id:str}/runs")
    async def job_runs(
        self, request: Request[Any, Any, Any], services: ServicesDep, job_id: JobIdPath
    ) -> Response[Any]:
        """The newest runs alone, for the page's script after a run-now."""
        oid = parse_job_id(job_id)
        if await jobs_repo.get_job(services.db, oid) is None:
            raise jobs_repo.JobNotFoundError(oid)
        runs = await jobs_repo.list_runs(services.db, oid, limit=RUNS_SHOWN)
        return render(request, "runs_table.html.j2", runs=runs)

    @get("/{job_id:str}/delete")
    async def confirm_delete(
        self, request: Request[Any, Any, Any], services: ServicesDep, job_id: JobIdPath
    ) -> Response[Any]:
        """The confirmation step before a delete."""
        oid = parse_job_id(job_id)
        job = await jobs_repo.get_job(services.db, oid)
        if job is None:
            raise jobs_repo.JobNotFoundError(oid)
        return render(request, "confirm_delete.html.j2", job=job)


async def detail_page(
    request: Request[Any, Any, Any],
    services: ServicesDep,
    oid: ObjectId,
    notice: str | None = None,
    before: str = "",
    *,
    error: actions.ActionFailure | None = None,
) -> Response[Any]:
    """The job's page, with a notice or the message of a refused action."""
    job = await jobs_repo.get_job(services.db, oid)
    if job is None:
        raise jobs_repo.JobNotFoundError(oid)
    now = datetime.now(UTC)
    fire_times, schedule_error = _preview(job, now)
    older = ObjectId(before) if ObjectId.is_valid(before) else None
    runs = await jobs_repo.list_runs(services.db, oid, limit=RUNS_SHOWN + 1, before=older)
    reports = []
    if job.type == REPORT_TYPE:
        reports = await jobs_repo.list_reports(services.db, oid, limit=REPORTS_SHOWN)
    return render(
        request,
        "job.html.j2",
        error.status if error else HTTPStatus.OK,
        job=job,
        fire_times=fire_times,
        schedule_error=schedule_error,
        runs=runs[:RUNS_SHOWN],
        older_cursor=str(runs[RUNS_SHOWN - 1].id) if len(runs) > RUNS_SHOWN else None,
        reports=reports,
        notice=notice,
        error=error.message if error else None,
    )


class JobActionsController(Controller):
    """Pause, resume, run now, delete: POST forms, CSRF-checked by the router's middleware."""

    path = "/jobs/{job_id:str}"

    async def _done(
        self,
        *,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        oid: ObjectId,
        failure: actions.ActionFailure | None = None,
        notice: str = "",
        text: str = "",
    ) -> Response[Any]:
        if is_fetch(request):
            status = failure.status if failure else HTTPStatus.ACCEPTED
            body = failure.message if failure else (text or NOTICES[notice])
            return Response(
                body, status_code=status, media_type="text/plain", headers=SECURITY_HEADERS
            )
        if failure is not None:
            return await detail_page(request, services, oid, error=failure)
        target = f"/dashboard/jobs/{oid}?notice={notice}"
        return see_other(target)

    @post("/pause", status_code=HTTPStatus.SEE_OTHER)
    async def pause(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        caller: CallerDep,
        job_id: JobIdPath,
    ) -> Response[Any]:
        """Pause (version-checked against the page the admin saw)."""
        return await self._toggle(request, services, caller, job_id, enabled=False)

    @post("/resume", status_code=HTTPStatus.SEE_OTHER)
    async def resume(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        caller: CallerDep,
        job_id: JobIdPath,
    ) -> Response[Any]:
        """Resume (version-checked against the page the admin saw)."""
        return await self._toggle(request, services, caller, job_id, enabled=True)

    async def _toggle(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        caller: CallerDep,
        job_id: JobIdPath,
        *,
        enabled: bool,
    ) -> Response[Any]:
        oid = parse_job_id(job_id)
        version = await _form_version(request)
        try:
            await actions.set_enabled(
                services, caller, oid, enabled=enabled, expected_version=version
            )
        except actions.ActionFailure as failure:
            return await self._done(request=request, services=services, oid=oid, failure=failure)
        return await self._done(
            request=request, services=services, oid=oid, notice="resumed" if enabled else "paused"
        )

    @post("/run-now", status_code=HTTPStatus.SEE_OTHER)
    async def run_now(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        caller: CallerDep,
        job_id: JobIdPath,
    ) -> Response[Any]:
        """Queue a manual run (409 if the job forbids overlaps and is busy)."""
        oid = parse_job_id(job_id)
        try:
            run_id = await actions.run_now(services, caller, oid)
        except actions.ActionFailure as failure:
            return await self._done(request=request, services=services, oid=oid, failure=failure)
        return await self._done(
            request=request,
            services=services,
            oid=oid,
            notice="queued",
            text=f"Run {run_id} queued.",
        )

    @post("/test", status_code=HTTPStatus.SEE_OTHER)
    async def test_run(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        caller: CallerDep,
        job_id: JobIdPath,
    ) -> Response[Any]:
        """Queue a test run: the job's status and counters stay as they are (409 like run-now)."""
        oid = parse_job_id(job_id)
        try:
            run_id = await actions.run_now(services, caller, oid, trigger=RunTrigger.TEST)
        except actions.ActionFailure as failure:
            return await self._done(request=request, services=services, oid=oid, failure=failure)
        return await self._done(
            request=request,
            services=services,
            oid=oid,
            notice="tested",
            text=f"Test run {run_id} queued.",
        )

    @post("/delete", status_code=HTTPStatus.SEE_OTHER)
    async def delete(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        caller: CallerDep,
        job_id: JobIdPath,
    ) -> Response[Any]:
        """Delete after the confirmation page (version-checked)."""
        oid = parse_job_id(job_id)
        version = await _form_version(request)
        try:
            await actions.delete(services, caller, oid, expected_version=version)
        except actions.ActionFailure as failure:
            if failure.status == HTTPStatus.NOT_FOUND:
                raise jobs_repo.JobNotFoundError(oid) from None
            return await self._done(request=request, services=services, oid=oid, failure=failure)
        return see_other("/dashboard/jobs/?notice=deleted")
