"""One error shape for every 4xx (and a leak-free 5xx); handlers mapping exceptions to it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import ParameterKwarg
from litestar.types import ExceptionHandlersMap
from pymongo.errors import ConnectionFailure

from api.schemas.common import FieldError, Problem
from shared import jobs_repo

log = structlog.get_logger(__name__)

WWW_AUTHENTICATE: Final = "WWW-Authenticate"
BEARER_CHALLENGE: Final = 'Bearer realm="cronjobs"'
INVALID_TOKEN_CHALLENGE: Final = 'Bearer realm="cronjobs", error="invalid_token"'
# At most this many field errors in one answer: enough to fix a form, bounded for hostile input.
MAX_FIELD_ERRORS: Final = 50
_INDEX: Final = re.compile(r"\.(\d+)(?=\.|$)")
# pydantic / msgspec phrasings rewritten so that a message says what to send, after the field.
_REWRITES: Final = (
    (re.compile(r"^(?:Value|Assertion) error, "), ""),
    (re.compile(r"^Field required$"), "is required"),
    (re.compile(r"^Extra inputs are not permitted$"), "is not a known field (remove it)"),
    (
        re.compile(r"^Input should be a valid dictionary or instance of \w+$"),
        "must be a JSON object",
    ),
    (re.compile(r"^Input should be a valid dictionary$"), "must be a JSON object"),
    (re.compile(r"^Input should be "), "must be "),
    (re.compile(r"^String should have "), "must have "),
    (re.compile(r"^List should have "), "must have "),
)
# msgspec (query and header parameters): "Expected `int` >= 1", "Expected `bool | null`, got `str`".
_EXPECTED: Final = re.compile(r"^Expected `([^`]*)`(.*?)(?:, got `[^`]*`)?$")
_TYPE_WORDS: Final = {
    "int": "an integer",
    "bool": "true or false",
    "str": "text",
    "float": "a number",
}


class ApiError(Exception):
    """An expected failure answered with the error shape."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldError] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)[:MAX_FIELD_ERRORS]
        self.headers = dict(headers or {})


def plain_message(message: str) -> str:
    """A validation library's message as an expectation: "must be an integer", "is required"."""
    for pattern, replacement in _REWRITES:
        message = pattern.sub(replacement, message, count=1)
    expected = _EXPECTED.match(message)
    if expected:
        kinds = [kind.strip() for kind in expected.group(1).split("|") if kind.strip() != "null"]
        words = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in kinds)
        message = f"must be {words}{expected.group(2)}"
    return message


def summary(errors: Sequence[FieldError]) -> str:
    """`field: message; ...` for the first few errors (the `detail` of a 422)."""
    text = "; ".join(f"{error.field}: {error.message}" for error in errors[:3])
    return text + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")


def invalid(errors: Sequence[FieldError], detail: str = "") -> ApiError:
    """422 naming each offending field."""
    return ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, detail or summary(errors), errors)


def field_error(field: str, message: str) -> FieldError:
    """One `{field, message}` entry."""
    return FieldError(field=field, message=message)


def job_not_found() -> ApiError:
    """404 for an absent job, another owner's job, or a malformed id (indistinguishable)."""
    return ApiError(HTTPStatus.NOT_FOUND, "job not found")


def problem(
    status: int,
    detail: str,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response[Problem]:
    """A response carrying the error shape."""
    body = Problem(
        status=status, title=HTTPStatus(status).phrase, detail=detail, errors=list(errors)
    )
    return Response(
        body, status_code=status, headers=dict(headers or {}), media_type=MediaType.JSON
    )


def _field_name(key: str) -> str:
    """Litestar's dotted key (`retry.maxAttempts`, `to.1`) in the documented form (`to[1]`)."""
    return _INDEX.sub(r"[\1]", key) if key and key != "data" else "body"


def _parameter_names(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The handler's Python parameter names -> the names clients send (`job_type` -> `type`).

    Litestar reports a query parameter by its Python name, which clients never see.
    """
    signature = getattr(request.scope.get("route_handler"), "parsed_fn_signature", None)
    names: dict[str, str] = {}
    for name, definition in getattr(signature, "parameters", {}).items():
        kwarg = getattr(definition, "kwarg_definition", None)
        if isinstance(kwarg, ParameterKwarg) and kwarg.name:
            names[name] = kwarg.name
    return names


def _validation_errors(extra: Any, parameter_names: Mapping[str, str]) -> list[FieldError]:
    errors = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, Mapping):
            continue
        key = str(item.get("key", ""))
        if item.get("source") != "body":
            key = parameter_names.get(key, key)
        field = _field_name(key)
        message = plain_message(str(item.get("message", "invalid value")))
        if field == "body" and message.strip("'") in {"data", "is required"}:
            message = "a JSON object body is required"
        if field == "body" and message.startswith("must be a JSON object"):
            message = "a JSON object body is required"
        errors.append(field_error(field, message))
    return errors or [field_error("body", "a JSON object body is required")]


def handle_api_error(_: Request[Any, Any, Any], error: ApiError) -> Response[Problem]:
    """ApiError as raised."""
    return problem(error.status, error.detail, error.errors, error.headers)


def handle_http_exception(
    request: Request[Any, Any, Any], error: HTTPException
) -> Response[Problem]:
    """Litestar's own errors (routing, 401, 405, 413, 429, validation) in the error shape."""
    headers = dict(error.headers or {})
    status = error.status_code
    if isinstance(error, ValidationException):
        errors = _validation_errors(error.extra, _parameter_names(request))
        return problem(HTTPStatus.UNPROCESSABLE_ENTITY, summary(errors), errors, headers)
    if isinstance(error, NotAuthorizedException):
        headers.setdefault(WWW_AUTHENTICATE, BEARER_CHALLENGE)
    if isinstance(error, TooManyRequestsException):
        reset = headers.get("RateLimit-Reset", "1")
        headers["Retry-After"] = str(max(1, int(reset))) if reset.isdigit() else "1"
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        log.error("api.server_error", status=status, error=str(error.detail))
        return problem(status, HTTPStatus(status).description)
    detail = error.detail if error.detail and error.detail != HTTPStatus(status).phrase else ""
    return problem(status, detail or HTTPStatus(status).description, (), headers)


def handle_unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    """Anything else: logged with its traceback, answered without internals."""
    log.exception("api.unhandled_error", path=request.url.path, method=request.method)
    return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; it has been logged")


def _conflict(_: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    return problem(HTTPStatus.CONFLICT, str(error))


def _forbidden(_: Request[Any, Any, Any], error: Exception) -> Response[Problem]:
    return problem(HTTPStatus.FORBIDDEN, str(error))


def _not_found(_: Request[Any, Any, Any], __: Exception) -> Response[Problem]:
    return problem(HTTPStatus.NOT_FOUND, "job not found")


def _version_conflict(
    _: Request[Any, Any, Any], error: jobs_repo.VersionConflictError
) -> Response[Problem]:
    if error.expected is None:  # contention without If-Match: retrying is the client's move
        return problem(HTTPStatus.CONFLICT, str(error))
    detail = f"the job has changed: it is at version {error.actual}; fetch it and retry"
    return problem(HTTPStatus.PRECONDITION_FAILED, detail, headers={"ETag": f'"{error.actual}"'})


def _database_unavailable(
    request: Request[Any, Any, Any], error: ConnectionFailure
) -> Response[Problem]:
    log.warning("api.database_unavailable", path=request.url.path, error=type(error).__name__)
    detail = "the database is unavailable; retry later"
    return problem(HTTPStatus.SERVICE_UNAVAILABLE, detail, headers={"Retry-After": "5"})


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: handle_api_error,
    HTTPException: handle_http_exception,
    jobs_repo.JobNotFoundError: _not_found,
    jobs_repo.DuplicateJobNameError: _conflict,
    jobs_repo.QuotaExceededError: _conflict,
    jobs_repo.ProtectedTypeError: _forbidden,
    jobs_repo.RunInProgressError: _conflict,
    jobs_repo.VersionConflictError: _version_conflict,
    ConnectionFailure: _database_unavailable,
    Exception: handle_unexpected,
}
