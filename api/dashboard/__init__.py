"""The operator dashboard under /dashboard: server-rendered pages for admins.

The whole wiring in `create_app`: `plugins=[..., *dashboard_plugins(services)]`, and bearer
authentication leaves DASHBOARD_AUTH_EXCLUDE alone (the dashboard signs admins in with a cookie).
"""

from __future__ import annotations

from typing import Final

from api.dashboard.plugin import DASHBOARD_STATE_KEY, DashboardPlugin, dashboard_plugins

DASHBOARD_AUTH_EXCLUDE: Final = "^/dashboard(/|$)"

__all__ = ["DASHBOARD_AUTH_EXCLUDE", "DASHBOARD_STATE_KEY", "DashboardPlugin", "dashboard_plugins"]
