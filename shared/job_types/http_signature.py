"""The signature on httpRequest calls: `X-Cron-Signature: t=<unix>,v1=<hex HMAC-SHA256>`.

The MAC is HMAC-SHA256 keyed with `CRON_HTTP_SIGNING_SECRET` (UTF-8) over the bytes
`f"{t}."` followed by the exact request body (empty for no body). `t` is also sent as
`X-Cron-Timestamp`. A receiver recomputes the MAC, compares in constant time and rejects old `t`.
"""

from __future__ import annotations

import hashlib
import hmac

from structlog.typing import FilteringBoundLogger

from shared.settings import DEFAULT_SIGNING_SECRET, Settings

SIGNATURE_HEADER = "X-Cron-Signature"
TIMESTAMP_HEADER = "X-Cron-Timestamp"
SCHEME_VERSION = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `f"{timestamp}."` + body."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Cron-Signature` value: `t=<timestamp>,v1=<hex>`."""
    return f"t={timestamp},{SCHEME_VERSION}={signature(secret, timestamp, body)}"


def warn_if_default_secret(settings: Settings, log: FilteringBoundLogger) -> bool:
    """Log one warning if CRON_HTTP_SIGNING_SECRET is still the `change-me` default.

    The default keeps local runs working, but anyone who reads the README can forge the
    signature, so a worker says so once at start. True if it warned.
    """
    if settings.http_signing_secret.get_secret_value() != DEFAULT_SIGNING_SECRET:
        return False
    log.warning(
        "http_signing_secret.default",
        variable="CRON_HTTP_SIGNING_SECRET",
        hint="still the public default `change-me`: receivers cannot tell forged calls apart; "
        "set a long random secret",
    )
    return True
