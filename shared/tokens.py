"""Mint HS256 test tokens with the configured secret (local runs, tests, `cronjobs token`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from shared.settings import Settings


class TokenError(ValueError):
    """A token cannot be minted with this configuration."""


def mint_token(
    settings: Settings,
    subject: str,
    roles: Sequence[str] = (),
    ttl_seconds: int = 3600,
    *,
    now: float | None = None,
) -> str:
    """A signed HS256 JWT for `subject`, with issuer/audience from settings when configured."""
    if settings.jwt_secret is None:
        raise TokenError("CRON_JWT_SECRET is not set: tokens can only be minted with HS256")
    if not subject:
        raise TokenError("subject must not be empty")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": subject,
        "roles": list(roles),
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
