"""Conditional requests judged before the body: a stale If-Match is 412 even with a bad body."""

from __future__ import annotations

from typing import Any

from litestar import Request

from api.auth import Principal
from api.dependencies import services_of
from api.params import parse_if_match, parse_job_id
from shared import jobs_repo


async def judge_if_match(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook of the writes: 404 / 412 before the body is parsed and validated.

    The write itself still compares the version atomically; this read only decides which
    answer a client gets first when both the precondition and the body are wrong.
    """
    expected = parse_if_match(request.headers.get("If-Match"))
    if expected is None:
        return None
    job_id = parse_job_id(str(request.path_params["job_id"]))
    caller: Principal = request.user
    scope = None if caller.is_admin else caller.sub
    job = await jobs_repo.get_job(services_of(request.app.state).db, job_id, scope)
    if job is None:
        raise jobs_repo.JobNotFoundError(job_id)
    if job.version != expected:
        raise jobs_repo.VersionConflictError(job_id, expected, job.version)
    return None


def if_none_match_hits(header: str | None, current_etag: str) -> bool:
    """Whether an If-None-Match header names the current ETag (or is `*`): answer 304."""
    if header is None:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == current_etag for tag in tags)
