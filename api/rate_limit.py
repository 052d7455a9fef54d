"""Per-owner rate limiting shared by every API process: Litestar's middleware on a MongoDB store.

Litestar's RateLimitMiddleware reads a window from its store and writes it back (two calls under
a per-process lock), which is exact in one process only. Here the window is counted with one
atomic upsert in MongoDB (`MongoRateLimitStore.hit`), so the limit holds across any number of
API processes, and no process-wide lock serialises requests.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    RateLimitConfig,
    RateLimitMiddleware,
    get_remote_address,
)
from litestar.types import Receive, Scope, Send

from api.auth import Principal
from api.rate_limit_store import MongoRateLimitStore
from shared.settings import Settings, parse_rate_limit

# The name the store is registered under in the app (`Litestar(stores=...)`).
STORE_NAME = "rate_limit"


def owner_key(request: Request[Any, Any, Any]) -> str:
    """The owner of an authenticated request; the client address otherwise."""
    user = request.scope.get("user")
    if isinstance(user, Principal):
        return f"owner:{user.sub}"
    return f"address:{get_remote_address(request)}"


class SharedRateLimitMiddleware(RateLimitMiddleware):
    """RateLimitMiddleware counting each request with one atomic `hit` on the shared store."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request in its window; 429 (with RateLimit-* headers) beyond the limit."""
        app = scope["litestar_app"]
        request: Request[Any, Any, Any] = app.request_class(scope)
        if await self.should_check_request(request=request):
            store = self.config.get_store_from_app(app)
            assert isinstance(store, MongoRateLimitStore)
            window = await store.hit(self.cache_key_from_request(request), self.window_seconds)
            # The middleware's header helpers read the count as the length of a history list.
            seen = min(window.count, self.max_requests + 1)
            cache_object = CacheObject(history=[0] * seen, reset=window.reset)
            if window.count > self.max_requests:
                raise TooManyRequestsException(
                    headers=self.create_response_headers(cache_object=cache_object)
                )
            send = self.create_send_wrapper(send=send, cache_object=cache_object)
        await self.app(scope, receive, send)

    @property
    def window_seconds(self) -> int:
        """The length of one counting window."""
        return DURATION_VALUES[self.unit]


def rate_limit_config(settings: Settings, exclude: list[str]) -> RateLimitConfig:
    """CRON_RATE_LIMIT (N/unit) per owner, counted in MongoDB for all API processes together."""
    return RateLimitConfig(
        rate_limit=parse_rate_limit(settings.rate_limit),
        identifier_for_request=owner_key,
        exclude=exclude,
        exclude_opt_key="exclude_from_auth",
        middleware_class=SharedRateLimitMiddleware,
        store=STORE_NAME,
    )
