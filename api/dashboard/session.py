"""The dashboard's sign-in session: a signed, expiring cookie holding the admin's `sub`.

The cookie is a JWT (HS256) signed with a key of the dashboard's own: a bearer token is pasted
once, verified like any API token, and never stored. The session expires after
CRON_DASHBOARD_SESSION_MINUTES, and never later than the pasted token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
import structlog
from litestar import Request, Response

from api.auth import ADMIN_ROLE, Principal
from shared.settings import Settings

log = structlog.get_logger(__name__)

COOKIE_NAME: Final = "cronjobs_dashboard"
COOKIE_PATH: Final = "/dashboard"
_ALGORITHM: Final = "HS256"
_AUDIENCE: Final = "cronjobs-dashboard"
# Domain separation: the session key derived from the JWT secret signs nothing else.
_DERIVATION_LABEL: Final = b"cronjobs dashboard session v1"


def session_key(settings: Settings) -> bytes:
    """CRON_DASHBOARD_SESSION_SECRET, else a key derived from CRON_JWT_SECRET, else random.

    A random key is per process: sessions then end at a restart and are not shared between
    CRON_API_WORKERS processes, which the log line says.
    """
    if settings.dashboard_session_secret is not None:
        return settings.dashboard_session_secret.get_secret_value().encode()
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value().encode()
        return hmac.new(secret, _DERIVATION_LABEL, hashlib.sha256).digest()
    log.warning(
        "dashboard.random_session_key",
        hint="set CRON_DASHBOARD_SESSION_SECRET so sessions survive restarts",
    )
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class SessionCodec:
    """Encodes and checks session cookies."""

    key: bytes
    lifetime: timedelta

    @classmethod
    def of(cls, settings: Settings) -> SessionCodec:
        """The codec for these settings."""
        return cls(session_key(settings), timedelta(minutes=settings.dashboard_session_minutes))

    def encode(
        self,
        admin: Principal,
        *,
        token_expires: datetime | None = None,
        now: datetime | None = None,
    ) -> tuple[str, datetime]:
        """The cookie value for `admin` and when it expires."""
        now = now or datetime.now(UTC)
        expires = now + self.lifetime
        if token_expires is not None:
            expires = min(expires, token_expires)
        claims = {
            "sub": admin.sub,
            "roles": sorted(admin.roles),
            "aud": _AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return jwt.encode(claims, self.key, algorithm=_ALGORITHM), expires

    def decode(self, value: str) -> Principal | None:
        """The signed-in admin, or None for a missing, forged, malformed or expired cookie."""
        try:
            claims = jwt.decode(
                value,
                self.key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        roles = claims.get("roles")
        if not isinstance(claims.get("sub"), str) or not isinstance(roles, list):
            return None
        return Principal(sub=claims["sub"], roles=frozenset(str(role) for role in roles))


def is_tls(request: Request[Any, Any, Any]) -> bool:
    """Whether the browser reached us over TLS (uvicorn maps trusted X-Forwarded-Proto)."""
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response[Any], request: Request[Any, Any, Any], value: str, expires: datetime
) -> None:
    """HttpOnly, SameSite=Strict, path /dashboard, Secure over TLS, expiring with the session."""
    max_age = max(0, int((expires - datetime.now(UTC)).total_seconds()))
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_tls(request),
    )


def clear_session_cookie(response: Response[Any], request: Request[Any, Any, Any]) -> None:
    """Sign-out: the browser drops the cookie."""
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)


def signed_in_admin(codec: SessionCodec, cookie: str | None) -> Principal | None:
    """The Principal of a valid session cookie (any roles), else None."""
    return None if not cookie else codec.decode(cookie)


def is_admin(principal: Principal) -> bool:
    """Whether the principal may use the dashboard."""
    return ADMIN_ROLE in principal.roles
