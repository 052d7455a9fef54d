"""`/jobs/{id}/runs` and `/jobs/{id}/reports`: what a job did, newest first."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.controllers.jobs import JobId, owner_scope
from api.dependencies import CallerDep, DatabaseDep
from api.guards import requires_caller
from api.openapi import problems
from api.params import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, parse_cursor, parse_job_id
from api.schemas.history import ReportOut, ReportPage, RunOut, RunPage
from shared import jobs_repo

Limit = Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT_MAX)]
Cursor = Annotated[str | None, QueryParameter(description="`nextCursor` of the previous page.")]


class HistoryController(Controller):
    """Run history and reports of one of the caller's jobs."""

    path = "/jobs/{job_id:str}"
    tags = ["history"]
    guards = [requires_caller]

    @get("/runs", summary="Run history", responses=problems(404, 422))
    async def list_runs(
        self,
        job_id: JobId,
        caller: CallerDep,
        db: DatabaseDep,
        limit: Limit = PAGE_LIMIT_DEFAULT,
        cursor: Cursor = None,
    ) -> RunPage:
        """Runs (attempts, skipped and missed slots), newest first."""
        oid = parse_job_id(job_id)
        before = parse_cursor(cursor)
        if await jobs_repo.get_job(db, oid, owner_scope(caller)) is None:
            raise jobs_repo.JobNotFoundError(oid)
        runs = await jobs_repo.list_runs(db, oid, limit=limit + 1, before=before)
        page = runs[:limit]
        next_cursor = str(page[-1].id) if len(runs) > limit else None
        return RunPage(items=[RunOut.of(run) for run in page], next_cursor=next_cursor)

    @get("/reports", summary="Reports of a generateReport job", responses=problems(404, 422))
    async def list_reports(
        self,
        job_id: JobId,
        caller: CallerDep,
        db: DatabaseDep,
        limit: Limit = PAGE_LIMIT_DEFAULT,
        cursor: Cursor = None,
    ) -> ReportPage:
        """Stored reports, newest first."""
        oid = parse_job_id(job_id)
        before = parse_cursor(cursor)
        scope = owner_scope(caller)
        if await jobs_repo.get_job(db, oid, scope) is None:
            raise jobs_repo.JobNotFoundError(oid)
        reports = await jobs_repo.list_reports(
            db, oid, owner_id=scope, limit=limit + 1, before=before
        )
        page = reports[:limit]
        next_cursor = str(page[-1]["_id"]) if len(reports) > limit else None
        return ReportPage(items=[ReportOut.of(report) for report in page], next_cursor=next_cursor)
