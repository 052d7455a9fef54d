"""Route guards."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from api.auth import Principal


def requires_caller(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse a request that reached a protected route without an authenticated Principal."""
    if not isinstance(connection.scope.get("user"), Principal):
        raise NotAuthorizedException("missing bearer token")
