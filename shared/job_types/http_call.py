"""The request an `httpRequest` run sends: body, service headers and signature, built without I/O.

The worker's handler sends each hop with `request_headers`; a dry-run shows the first hop
(`describe`) with the same code, signature included, without resolving or connecting.
"""

from __future__ import annotations

import string
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from shared import __version__, netguard
from shared.job_types.http_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header
from shared.job_types.limits import json_bytes
from shared.run_identity import RunIdentity
from shared.settings import Settings

if TYPE_CHECKING:  # http_request registers `preview` below: no import cycle at run time
    from shared.job_types.http_request import HttpRequestPayload

USER_AGENT: Final = f"cronjobs/{__version__}"
# X-Cron-Job carries the job name; anything outside printable ASCII is percent-encoded (UTF-8).
_NAME_SAFE: Final = "".join(c for c in string.printable if c not in "%\t\n\r\x0b\x0c")


def body_of(payload: HttpRequestPayload) -> tuple[bytes, str | None]:
    """The body bytes and the Content-Type that describes them (None without a body)."""
    if payload.body is None:
        return b"", None
    if isinstance(payload.body, str):
        return payload.body.encode("utf-8"), "text/plain; charset=utf-8"
    return json_bytes(payload.body), "application/json"


def identity_headers(
    identity: RunIdentity, settings: Settings, timestamp: int, body: bytes
) -> dict[str, str]:
    """The service's headers: who is calling, for which run, and the signature over `body`."""
    secret = settings.http_signing_secret.get_secret_value()
    scheduled = identity.scheduled_for.astimezone(UTC).isoformat(timespec="milliseconds")
    return {
        "User-Agent": USER_AGENT,
        "X-Cron-Job": quote(identity.job_name, safe=_NAME_SAFE),
        "X-Cron-Job-Id": identity.job_id,
        "X-Cron-Run-Id": identity.run_id,
        "X-Cron-Attempt": str(identity.attempt),
        "X-Cron-Scheduled-For": scheduled.replace("+00:00", "Z"),
        "X-Cron-Idempotency-Key": identity.idempotency_key,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
    }


def request_headers(
    job_headers: dict[str, str], content_type: str | None, service: dict[str, str]
) -> dict[str, str]:
    """Every header of one hop (except `Host`, set when connecting to a pinned address)."""
    own = {name.lower() for name in job_headers}
    headers: dict[str, str] = {}
    if content_type and "content-type" not in own:
        headers["Content-Type"] = content_type
    headers.update(job_headers)
    headers.update(service)
    if "accept-encoding" not in own:
        # The capped read takes raw bytes: ask for an uncompressed answer.
        headers["Accept-Encoding"] = "identity"
    return headers


def describe(
    identity: RunIdentity, settings: Settings, payload: HttpRequestPayload, timestamp: int
) -> dict[str, Any]:
    """The first request as a dry-run shows it: method, absolute URL, headers, body.

    No name is resolved and nothing is sent; the send-time checks (DNS answers, redirects)
    are the handler's.
    """
    url, _ = netguard.resolve_url(payload.url, settings.http_base_url)
    body, content_type = body_of(payload)
    service = identity_headers(identity, settings, timestamp, body)
    return {
        "kind": "httpRequest",
        "method": payload.method.value,
        "url": str(url),
        "headers": request_headers(dict(payload.headers), content_type, service),
        "body": body.decode("utf-8") if body else None,
        "timeoutSeconds": payload.timeout_seconds,
    }


def preview(
    identity: RunIdentity, payload: HttpRequestPayload, settings: Settings
) -> dict[str, Any]:
    """What a run would send, signed as if sent at its scheduled instant."""
    return describe(identity, settings, payload, int(identity.scheduled_for.timestamp()))
