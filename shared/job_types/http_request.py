"""`httpRequest`: call an HTTP endpoint (signed, SSRF-guarded); the payload and creation rules."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from shared import netguard
from shared.job_types import http_call
from shared.job_types.limits import MAX_BODY_BYTES, bounded_json
from shared.registry import JobType, PayloadContext, PayloadRuleError
from shared.settings import Settings

log = structlog.get_logger(__name__)

MAX_HEADERS = 30
MAX_HEADER_NAME_LENGTH = 100
MAX_HEADER_VALUE_LENGTH = 2048
MAX_HEADERS_BYTES = 8 * 1024
DEFAULT_TIMEOUT_SECONDS = 10
MAX_TIMEOUT_SECONDS = 60

# Set by the service on every call; clients cannot send their own (plus anything `X-Cron-*`).
RESERVED_HEADERS = frozenset(
    {
        "user-agent",
        "host",
        "content-length",
        # hop-by-hop and framing headers
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
RESERVED_HEADER_PREFIX = "x-cron-"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")


class HttpMethod(StrEnum):
    """Methods a job may use."""

    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


def _check_header_name(name: str) -> str:
    if not _TOKEN.fullmatch(name) or len(name) > MAX_HEADER_NAME_LENGTH:
        raise ValueError(
            f"header name {name!r} must be an HTTP token of at most "
            f"{MAX_HEADER_NAME_LENGTH} characters"
        )
    lowered = name.lower()
    if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIX):
        raise ValueError(f"header {name!r} is set by the service and cannot be sent by a job")
    return name


def _check_header_value(value: str) -> str:
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError("header values must be printable ASCII (no CR, LF or NUL)")
    return value


def _check_body_type(value: Any) -> Any:
    if value is not None and not isinstance(value, str | dict):
        raise ValueError("must be a string or a JSON object")
    return value


HeaderName = Annotated[str, AfterValidator(_check_header_name)]
HeaderValue = Annotated[
    str, Field(max_length=MAX_HEADER_VALUE_LENGTH), AfterValidator(_check_header_value)
]
Body = Annotated[
    str | dict[str, Any] | None,
    BeforeValidator(_check_body_type),
    AfterValidator(bounded_json(MAX_BODY_BYTES)),
]


class HttpRequestPayload(BaseModel):
    """One signed HTTP call; a non-2xx answer fails the attempt."""

    # Only the documented (alias) names: a Python name such as `sleep_seconds` is refused.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False)

    url: str = Field(
        min_length=1,
        max_length=netguard.MAX_URL_LENGTH,
        description="Absolute http(s) URL on an allowed host, or a path under the service's "
        "base URL (e.g. /hooks/nightly).",
    )
    method: HttpMethod = Field(HttpMethod.POST, description="HTTP method.")
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Extra request headers; identity, signature and hop-by-hop headers are "
        "reserved.",
    )
    body: Body = Field(
        None,
        description="A string (sent as text/plain) or a JSON object (sent as application/json), "
        f"at most {MAX_BODY_BYTES} bytes; not allowed with GET.",
    )
    timeout_seconds: int = Field(
        DEFAULT_TIMEOUT_SECONDS,
        ge=1,
        le=MAX_TIMEOUT_SECONDS,
        strict=True,
        alias="timeoutSeconds",
        description="Limit for the whole exchange, redirects included.",
    )

    @field_validator("url")
    @classmethod
    def _url_shape(cls, url: str) -> str:
        return netguard.check_url_shape(url)

    @field_validator("headers")
    @classmethod
    def _headers_together(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name in headers:
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is given twice (names are case-insensitive)")
            seen.add(name.lower())
        size = sum(len(name) + len(value) + 4 for name, value in headers.items())
        if size > MAX_HEADERS_BYTES:
            raise ValueError(f"headers total {size} bytes; at most {MAX_HEADERS_BYTES} allowed")
        return headers

    @field_validator("body")
    @classmethod
    def _no_body_with_get(cls, body: Any, info: ValidationInfo) -> Any:
        if body is not None and info.data.get("method") == HttpMethod.GET:
            raise ValueError("a GET request carries no body")
        return body


def own_endpoints(settings: Settings) -> frozenset[netguard.Endpoint]:
    """Where the API itself answers (its listening address and CRON_PUBLIC_BASE_URL)."""
    return netguard.own_endpoints(settings.api_host, settings.api_port, settings.public_base_url)


def check_target(payload: HttpRequestPayload, context: PayloadContext) -> None:
    """Creation-time SSRF rule: not the API itself, allowed host, public IP-literal host.

    The owner sees why in words; the setting that decided it is logged for the operator.
    """
    settings = context.settings
    try:
        url, trusted = netguard.resolve_url(payload.url, settings.http_base_url)
        netguard.check_not_own(url, own_endpoints(settings))
        if trusted:
            return
        literal = netguard.parse_ip(netguard.host_of(url))
        if literal is not None:
            netguard.check_address(literal, settings.http_allow_private_networks)
        exempt = context.is_admin and settings.http_admin_any_host
        netguard.check_host_allowed(url, settings.http_allowed_hosts, exempt)
    except netguard.TargetError as error:
        if error.operator_detail:
            log.info("http_request.target_refused", reason=error.operator_detail)
        raise PayloadRuleError("url", str(error)) from None


JOB_TYPE = JobType(
    name="httpRequest",
    payload_model=HttpRequestPayload,
    description="Calls an HTTP endpoint with a signed request (X-Cron-Signature); "
    "a non-2xx answer fails the attempt.",
    rules=(check_target,),
    preview=http_call.preview,
)
