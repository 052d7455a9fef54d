"""Who may see the dashboard: a signed-in admin (session cookie), checked by a guard."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from api.dashboard.session import COOKIE_NAME, SessionCodec, is_admin, signed_in_admin


class SignInRequired(NotAuthorizedException):
    """No valid session: the browser is sent to the sign-in page."""


class AdminRequired(PermissionDeniedException):
    """Signed in, but not as an admin: the 403 page."""


def admin_session_guard(codec: SessionCodec) -> Guard:
    """A guard admitting valid admin sessions; it puts the admin in `request.user`."""

    def requires_admin_session(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        principal = signed_in_admin(codec, connection.cookies.get(COOKIE_NAME))
        if principal is None:
            raise SignInRequired("sign in with an admin token")
        if not is_admin(principal):
            raise AdminRequired("the dashboard is for admins")
        connection.scope["user"] = principal

    return requires_admin_session
