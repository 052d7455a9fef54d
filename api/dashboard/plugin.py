"""The dashboard as a Litestar init plugin: its routes, its state and its shutdown hook."""

from __future__ import annotations

from typing import Final

from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from api.dashboard.state import Dashboard
from api.dependencies import Services

DASHBOARD_STATE_KEY: Final = "cronjobs_dashboard"


class DashboardPlugin(InitPluginProtocol):
    """Adds /dashboard to the app; cancels the overview's refresh at shutdown."""

    def __init__(self, services: Services) -> None:
        self.dashboard = Dashboard.of(services)
        self.secure_cookies = services.settings.public_base_url.startswith("https://")

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Register the router, the state entry and the shutdown hook."""
        from api.dashboard.routes import dashboard_router  # the controllers import this package

        app_config.route_handlers.append(dashboard_router(self.dashboard, self.secure_cookies))
        app_config.state[DASHBOARD_STATE_KEY] = self.dashboard
        app_config.on_shutdown.append(self._close)
        return app_config

    async def _close(self) -> None:
        await self.dashboard.overview.close()


def dashboard_plugins(services: Services) -> list[DashboardPlugin]:
    """The plugin if CRON_DASHBOARD_ENABLED, else nothing."""
    return [DashboardPlugin(services)] if services.settings.dashboard_enabled else []
