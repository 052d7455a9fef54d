"""The OpenAPI document: bearer security scheme and the documented error responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from litestar.datastructures import ResponseHeader
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme, Tag

from api.openapi_docs import render_plugins
from api.schemas.common import Problem
from shared import __version__
from shared.registry import JobTypeRegistry

BASE_PATH: Final = "/api/cron"
SCHEMA_PATH: Final = f"{BASE_PATH}/schema"
SECURITY_SCHEME: Final = "BearerToken"

_DESCRIPTIONS: Final = {
    400: "Malformed request: body not JSON / not UTF-8, or an unusable If-Match.",
    401: "Missing, malformed, expired or wrongly signed token (`WWW-Authenticate: Bearer`).",
    403: "Not allowed for this caller (e.g. writing or running a job of an admin-only type).",
    404: "No such job, another owner's job, or a malformed id.",
    409: "Duplicate name, job quota reached, a run is in progress (overlap forbidden), "
    "run-now or test sent by a running job (X-Cron-* headers), or backfill of a paused job.",
    412: "If-Match does not match the job's current version (ETag).",
    413: "Request body larger than CRON_MAX_BODY_BYTES.",
    422: "Validation failed; `errors` names each offending field.",
    429: "Rate limit (CRON_RATE_LIMIT) per owner exceeded; see `Retry-After`.",
    431: "Request headers larger than 16 KiB in total.",
}

ETAG_HEADER: Final = ResponseHeader(
    name="ETag", description='The job version, quoted (e.g. `"3"`).', documentation_only=True
)
LOCATION_HEADER: Final = ResponseHeader(
    name="Location", description="URL of the created job.", documentation_only=True
)


NOT_MODIFIED: Final = ResponseSpec(
    data_container=None,
    description="If-None-Match names the current ETag: no body.",
    generate_examples=False,
)


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Documented error responses (the error shape) for these statuses, plus 400, 401, 429, 431."""
    wanted = sorted({*statuses, 400, 401, 429, 431})
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in wanted
    }


def openapi_config(registry: JobTypeRegistry) -> OpenAPIConfig:
    """Served at /api/cron/schema (openapi.json under it); payloads typed by `registry`."""
    return OpenAPIConfig(
        title="cronjobs API",
        version=__version__,
        description="Manage your own scheduled jobs. Every `/api/cron` endpoint except "
        "healthz / readyz needs `Authorization: Bearer <JWT>`; errors share one shape.",
        path=SCHEMA_PATH,
        render_plugins=render_plugins(registry, SCHEMA_PATH),
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description='`sub` is the owner id; `roles: ["admin"]` makes an admin.',
                )
            }
        ),
        security=[{SECURITY_SCHEME: []}],
        tags=[
            Tag(name="jobs", description="Your scheduled jobs."),
            Tag(name="history", description="Runs and reports of a job."),
            Tag(name="catalog", description="Job types and schedule preview."),
            Tag(name="health", description="Liveness and readiness (no auth)."),
        ],
        use_handler_docstrings=True,
    )
