"""Sign-in (paste an admin bearer token once) and sign-out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, Final

import jwt
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.params import QueryParameter

from api.auth import InvalidTokenError
from api.dashboard.errors import SIGN_IN_PATH
from api.dashboard.render import render, see_other
from api.dashboard.session import (
    COOKIE_NAME,
    clear_session_cookie,
    is_admin,
    set_session_cookie,
    signed_in_admin,
)
from api.dashboard.state import DashboardDep

log = structlog.get_logger(__name__)

HOME: Final = "/dashboard/"
TOKEN_MAX_LENGTH: Final = 16_384
# Where to go after signing in: a dashboard path only (no scheme, host, `//` or backslash).
_LOCAL_TARGET: Final = re.compile(r"^/dashboard(/[A-Za-z0-9._~/?&=%+-]*)?$")


def safe_next(target: str | None) -> str:
    """`target` if it is a dashboard path, else the overview (no open redirect)."""
    if target and _LOCAL_TARGET.fullmatch(target) and "//" not in target:
        return target
    return HOME


def _token_expiry(token: str) -> datetime | None:
    """The verified token's `exp` (read again without checks: it was just verified)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


class AuthController(Controller):
    """The only dashboard pages reachable without a session."""

    path = "/"

    @get("/sign-in")
    async def sign_in_page(
        self,
        request: Request[Any, Any, Any],
        dashboard: DashboardDep,
        next_path: Annotated[str, QueryParameter(name="next", max_length=2000)] = "",
        signed_out: Annotated[str, QueryParameter(name="signed_out", max_length=10)] = "",
    ) -> Response[Any]:
        """The token form; an admin already signed in goes on at once."""
        principal = signed_in_admin(dashboard.codec, request.cookies.get(COOKIE_NAME))
        if principal is not None and is_admin(principal):
            return see_other(safe_next(next_path))
        notice = "You are signed out." if signed_out else None
        return render(
            request, "sign_in.html.j2", next_path=safe_next(next_path), error=None, notice=notice
        )

    @post("/sign-in")
    async def sign_in(
        self, request: Request[Any, Any, Any], dashboard: DashboardDep
    ) -> Response[Any]:
        """Verify the pasted token like the API does; admins get a session cookie."""
        form = await request.form()
        token = str(form.get("token") or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        target = safe_next(str(form.get("next") or ""))
        try:
            if not token or len(token) > TOKEN_MAX_LENGTH:
                raise InvalidTokenError("paste a bearer token")
            principal = dashboard.verifier.verify(token)
        except InvalidTokenError as error:
            log.info("dashboard.sign_in_refused", reason=str(error))
            return render(
                request,
                "sign_in.html.j2",
                HTTPStatus.UNAUTHORIZED,
                next_path=target,
                error=f"That token was refused: {error}.",
                notice=None,
            )
        if not is_admin(principal):
            log.info("dashboard.sign_in_not_admin", caller=principal.sub)
            return render(
                request,
                "error.html.j2",
                HTTPStatus.FORBIDDEN,
                title="Admins only",
                code=HTTPStatus.FORBIDDEN,
                message=f"The token of {principal.sub!r} is valid but does not carry the admin "
                "role. The dashboard is for admins.",
            )
        value, expires = dashboard.codec.encode(principal, token_expires=_token_expiry(token))
        response = see_other(target)
        set_session_cookie(response, request, value, expires)
        dashboard.overview.refresh()  # warm the overview while the browser follows the redirect
        log.info("dashboard.signed_in", caller=principal.sub, expires=expires.isoformat())
        return response

    @post("/sign-out")
    async def sign_out(
        self, request: Request[Any, Any, Any], dashboard: DashboardDep
    ) -> Response[Any]:
        """Drop the session cookie."""
        principal = signed_in_admin(dashboard.codec, request.cookies.get(COOKIE_NAME))
        response = see_other(f"{SIGN_IN_PATH}?signed_out=1")
        clear_session_cookie(response, request)
        log.info("dashboard.signed_out", caller=principal.sub if principal else None)
        return response
