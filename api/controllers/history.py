"""`/jobs/{id}/runs` and `/jobs/{id}/reports`: what a job did, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.controllers.jobs import JobId, owner_scope
from api.dependencies import CallerDep, DatabaseDep
from api.errors import field_error, invalid
from api.guards import requires_caller
from api.openapi import problems
from api.params import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, parse_cursor, parse_job_id
from api.schemas.history import ReportOut, ReportPage, RunOut, RunPage
from shared import jobs_repo
from shared.model import RunStatus, RunTrigger

Limit = Annotated[int, QueryParameter(ge=1, le=PAGE_LIMIT_MAX)]
Cursor = Annotated[str | None, QueryParameter(description="`nextCursor` of the previous page.")]
Statuses = Annotated[
    list[RunStatus] | None,
    QueryParameter(
        name="status",
        description="Only runs in one of these states (repeat the parameter for several).",
    ),
]
Trigger = Annotated[RunTrigger | None, QueryParameter(description="Only runs started this way.")]
Since = Annotated[
    datetime | None,
    QueryParameter(description="Only runs scheduled at or after this instant (ISO 8601)."),
]
Until = Annotated[
    datetime | None,
    QueryParameter(description="Only runs scheduled before this instant (ISO 8601)."),
]


class HistoryController(Controller):
    """Run history and reports of one of the caller's jobs."""

    path = "/jobs/{job_id:str}"
    tags = ["history"]
    guards = [requires_caller]

    @get("/runs", summary="Run history", responses=problems(404, 422))
    async def list_runs(
        self,
        *,
        job_id: JobId,
        caller: CallerDep,
        db: DatabaseDep,
        limit: Limit = PAGE_LIMIT_DEFAULT,
        cursor: Cursor = None,
        status: Statuses = None,
        trigger: Trigger = None,
        since: Since = None,
        until: Until = None,
    ) -> RunPage:
        """Runs (attempts, skipped and missed slots), newest first, optionally filtered.

        The history of a deleted job stays readable here until retention removes it.
        """
        oid = parse_job_id(job_id)
        before = parse_cursor(cursor)
        which = jobs_repo.RunFilter(
            statuses=tuple(status or ()),
            trigger=trigger,
            since=_aware(since, "since"),
            until=_aware(until, "until"),
        )
        scope = owner_scope(caller)
        if await jobs_repo.get_job(db, oid, scope) is None and not await jobs_repo.has_runs(
            db, oid, owner_id=scope
        ):
            raise jobs_repo.JobNotFoundError(oid)
        runs = await jobs_repo.list_runs(
            db, oid, limit=limit + 1, before=before, which=which, owner_id=scope
        )
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


def _aware(moment: datetime | None, name: str) -> datetime | None:
    """A time-range bound; 422 unless it carries a UTC offset (`Z` or `+01:00`)."""
    if moment is not None and moment.utcoffset() is None:
        raise invalid([field_error(name, "must include a UTC offset, e.g. 2026-11-23T07:00:00Z")])
    return moment
