"""Route guards."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from api.auth import Principal
from api.errors import ApiError
from shared.registry import JobTypeRegistry

log = structlog.get_logger(__name__)


def requires_caller(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a request that reached a protected route without an authenticated Principal."""
    if not isinstance(connection.scope.get("user"), Principal):
        raise NotAuthorizedException("missing bearer token")


# Headers the worker sets on every httpRequest call (jobs cannot set `X-Cron-*` themselves).
RUN_HEADERS = ("x-cron-signature", "x-cron-run-id")


def refuses_job_callers(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """409 for a request sent by a running job: a job must not queue runs (no loops, no chains).

    Only the worker sends these headers, and a job cannot set `X-Cron-*` headers itself, so their
    presence marks a call made by a job; no client of the API has a reason to send them.
    """
    present = [name for name in RUN_HEADERS if name in connection.headers]
    if present:
        log.info(
            "api.run_now_from_a_job",
            headers=present,
            run_id=connection.headers.get("x-cron-run-id"),
        )
        raise ApiError(
            HTTPStatus.CONFLICT,
            "this request was sent by a running job (it carries the X-Cron-* run headers); "
            "jobs cannot start runs, so a job cannot trigger itself or other jobs",
        )


def require_type_permission(registry: JobTypeRegistry, job_type: str, caller: Principal) -> None:
    """403 unless the caller may write or trigger a job of `job_type` (admin-only types: admins)."""
    if caller.is_admin or job_type not in registry:
        return
    if registry.get(job_type).admin_only:
        raise ApiError(HTTPStatus.FORBIDDEN, f"job type {job_type!r} is reserved for admins")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """403 (the error shape) unless the caller is an admin."""
    requires_caller(connection, _)
    if not connection.scope["user"].is_admin:
        raise ApiError(HTTPStatus.FORBIDDEN, "this action is reserved for admins")


def creating_owner(requested: str | None, caller: Principal) -> str:
    """The owner a new job is created for: the caller, or (admins only) `ownerId`; else 403."""
    owner_id = requested or caller.sub
    if owner_id != caller.sub and not caller.is_admin:
        raise ApiError(HTTPStatus.FORBIDDEN, "only admins may create jobs for another owner")
    return owner_id
