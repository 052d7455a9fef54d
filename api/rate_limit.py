"""Per-owner rate limiting with Litestar's RateLimitMiddleware, keyed by the token's `sub`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address

from api.auth import Principal
from shared.settings import Settings, parse_rate_limit


def owner_key(request: Request[Any, Any, Any]) -> str:
    """The owner of an authenticated request; the client address otherwise."""
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return f"owner:{user.sub}"
    return f"address:{get_remote_address(request)}"


def rate_limit_config(settings: Settings, exclude: list[str]) -> RateLimitConfig:
    """CRON_RATE_LIMIT (N/unit) per owner; per process (the store is in memory)."""
    return RateLimitConfig(
        rate_limit=parse_rate_limit(settings.rate_limit),
        identifier_for_request=owner_key,
        exclude=exclude,
        exclude_opt_key="exclude_from_auth",
    )
