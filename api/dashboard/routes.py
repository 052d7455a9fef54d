"""The dashboard's router: sign-in, admin pages behind the session guard, CSRF, static files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.static_files import create_static_files_router

from api.dashboard.controllers.auth import AuthController
from api.dashboard.controllers.jobs import JobActionsController, JobPagesController
from api.dashboard.controllers.pages import PagesController
from api.dashboard.errors import EXCEPTION_HANDLERS
from api.dashboard.guards import admin_session_guard
from api.dashboard.session import COOKIE_PATH
from api.dashboard.state import Dashboard

DASHBOARD_PATH: Final = "/dashboard"
STATIC_DIR: Final = Path(__file__).parent / "static"
CSRF_COOKIE: Final = "cronjobs_csrf"
# The API's rate limiter skips handlers with this opt (api/rate_limit.py): the stylesheet and
# script of every page, and the overview's cached auto-refresh, need not use up the budget.
NOT_RATE_LIMITED: Final = {"exclude_from_auth": True}


def csrf_config(dashboard: Dashboard, *, secure: bool) -> CSRFConfig:
    """Litestar's double-submit CSRF check for every POST of the dashboard."""
    secret = hashlib.sha256(b"cronjobs dashboard csrf v1" + dashboard.codec.key).hexdigest()
    return CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        cookie_path=COOKIE_PATH,
        cookie_httponly=True,
        cookie_samesite="strict",
        cookie_secure=secure,
        header_name="x-csrftoken",
    )


def dashboard_router(dashboard: Dashboard, secure: bool) -> Router:
    """Every dashboard route; `secure` marks the CSRF cookie Secure (an https public URL)."""
    admin_pages = Router(
        path="/",
        route_handlers=[PagesController, JobPagesController, JobActionsController],
        guards=[admin_session_guard(dashboard.codec)],
    )
    static = create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        include_in_schema=False,
        name="dashboard-static",
        opt=NOT_RATE_LIMITED,
    )
    return Router(
        path=DASHBOARD_PATH,
        route_handlers=[AuthController, admin_pages, static],
        dependencies={"dashboard": Provide(lambda: dashboard, sync_to_thread=False)},
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf_config(dashboard, secure=secure))],
        exception_handlers=EXCEPTION_HANDLERS,
        include_in_schema=False,
    )
