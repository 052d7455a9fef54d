"""Dashboard errors as HTML pages (the API's JSON error shape is for API clients)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlencode

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.types import ExceptionHandlersMap
from pymongo.errors import ConnectionFailure

from api.dashboard.guards import AdminRequired, SignInRequired
from api.dashboard.render import SECURITY_HEADERS, render, see_other
from api.errors import ApiError
from shared import jobs_repo

log = structlog.get_logger(__name__)

SIGN_IN_PATH: Final = "/dashboard/sign-in"
# Requests made by the dashboard's own script get fragments instead of whole pages.
FETCH_HEADER: Final = "x-dashboard-fetch"
CSRF_FAILURE: Final = "CSRF token verification failed"


def is_fetch(request: Request[Any, Any, Any]) -> bool:
    """Whether the dashboard's script made this request."""
    return request.headers.get(FETCH_HEADER) == "1"


def sign_in_redirect(request: Request[Any, Any, Any], _: SignInRequired) -> Response[Any]:
    """Back to the sign-in page; a GET page comes back after signing in."""
    if is_fetch(request):
        return Response(
            "Your session has ended: sign in again.",
            status_code=HTTPStatus.UNAUTHORIZED,
            media_type=MediaType.TEXT,
            headers=SECURITY_HEADERS,
        )
    target = SIGN_IN_PATH
    if request.method == "GET":
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?" + urlencode({"next": back})
    return see_other(target)


def error_page(request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
    """A page (or, for the script, a text fragment) explaining what went wrong."""
    if is_fetch(request):
        return Response(
            message, status_code=status, media_type=MediaType.TEXT, headers=SECURITY_HEADERS
        )
    title = HTTPStatus(status).phrase
    return render(request, "error.html.j2", status, title=title, message=message, code=status)


def _forbidden(request: Request[Any, Any, Any], error: PermissionDeniedException) -> Response[Any]:
    if isinstance(error, AdminRequired):
        message = "This dashboard is for admins. Your token does not carry the admin role."
    elif error.detail == CSRF_FAILURE:
        log.warning("dashboard.csrf_refused", path=request.url.path)
        message = (
            "The form was refused: its CSRF token is missing or does not match. "
            "Reload the page and try again."
        )
    else:
        message = error.detail or "Not allowed."
    return error_page(request, HTTPStatus.FORBIDDEN, message)


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    status = error.status_code
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        log.error("dashboard.server_error", status=status, error=str(error.detail))
        return error_page(request, status, "Something went wrong on our side.")
    detail = error.detail if error.detail != HTTPStatus(status).phrase else ""
    return error_page(request, status, detail or HTTPStatus(status).description)


def _api_error(request: Request[Any, Any, Any], error: ApiError) -> Response[Any]:
    return error_page(request, error.status, error.detail)


def _not_found(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    return error_page(request, HTTPStatus.NOT_FOUND, "No such job (it may have been deleted).")


def _database_unavailable(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.warning("dashboard.database_unavailable", path=request.url.path, error=type(error).__name__)
    return error_page(request, HTTPStatus.SERVICE_UNAVAILABLE, "The database is unavailable.")


def _unexpected(request: Request[Any, Any, Any], _: Exception) -> Response[Any]:
    log.exception("dashboard.unhandled_error", path=request.url.path, method=request.method)
    return error_page(request, HTTPStatus.INTERNAL_SERVER_ERROR, "Internal error; it was logged.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SignInRequired: sign_in_redirect,
    PermissionDeniedException: _forbidden,
    HTTPException: _http_error,
    ApiError: _api_error,
    jobs_repo.JobNotFoundError: _not_found,
    ConnectionFailure: _database_unavailable,
    Exception: _unexpected,
}
