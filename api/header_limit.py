"""A cap on the total size of request headers, answered in the problem shape (431).

The HTTP server (uvicorn with httptools) passes headers of any size to the app; past this cap
the request is refused before authentication reads them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError

# Room for a large JWT (a few KiB) and ordinary proxy headers; browsers cap near 16 KiB too.
MAX_HEADER_BYTES: Final = 16 * 1024


class HeaderSizeLimit(ASGIMiddleware):
    """431 Request Header Fields Too Large when the headers exceed MAX_HEADER_BYTES in total."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Measure the headers as sent (name, value, `: ` and CRLF each)."""
        size = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
        if size > MAX_HEADER_BYTES:
            raise ApiError(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                f"the request headers total {size} bytes; at most {MAX_HEADER_BYTES} are allowed",
            )
        await next_app(scope, receive, send)
