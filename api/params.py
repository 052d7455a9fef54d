"""Parsing of path ids, page cursors and If-Match."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from bson import ObjectId

from api.errors import ApiError, field_error, invalid, job_not_found

PAGE_LIMIT_DEFAULT: Final = 50
PAGE_LIMIT_MAX: Final = 200
_OBJECT_ID: Final = re.compile(r"[0-9a-fA-F]{24}")
_ETAG: Final = re.compile(r'(W/)?"?(\d{1,18})"?')
# Versions start at 1: an If-Match that can never match (a weak ETag) asks for version 0.
NEVER_MATCHES: Final = 0


def parse_job_id(raw: str) -> ObjectId:
    """A job id from the path; malformed ids answer 404 like absent ones."""
    if not _OBJECT_ID.fullmatch(raw):
        raise job_not_found()
    return ObjectId(raw)


def parse_cursor(raw: str | None) -> ObjectId | None:
    """A page cursor (the last id of the previous page); 422 if it is not one."""
    if raw is None:
        return None
    if not _OBJECT_ID.fullmatch(raw):
        raise invalid([field_error("cursor", "not a cursor returned by this API")])
    return ObjectId(raw)


def parse_if_match(raw: str | None) -> int | None:
    """The version an If-Match header requires (None: absent or `*`); 400 if unusable.

    If-Match uses the strong comparison (RFC 9110 13.1.1): a weak ETag `W/"3"` never matches,
    so it requires a version no job has (412 for an existing job).
    """
    if raw is None or raw.strip() == "*":
        return None
    match = _ETAG.fullmatch(raw.strip())
    if match is None:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            'If-Match must be one ETag as returned by this API, e.g. "3"',
            [field_error("If-Match", 'expected one ETag such as "3"')],
        )
    if match.group(1):
        return NEVER_MATCHES
    return int(match.group(2))


def etag(version: int) -> str:
    """The ETag of a job version."""
    return f'"{version}"'
