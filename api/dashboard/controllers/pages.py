"""Read-only pages: overview (with its auto-refreshed panel), failures, workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get

from api.dashboard.queries import (
    FAILURES_SCANNED,
    FAILURES_WINDOW,
    failure_groups,
    latest_failures,
    list_workers,
)
from api.dashboard.render import render
from api.dashboard.state import DashboardDep
from api.dependencies import ServicesDep


class PagesController(Controller):
    """The overview, failures and workers pages."""

    path = "/"

    @get("/")
    async def overview(
        self, request: Request[Any, Any, Any], dashboard: DashboardDep
    ) -> Response[Any]:
        """Jobs, runs, lag, backlog and workers at a glance."""
        snapshot = await dashboard.overview.get()
        return render(request, "overview.html.j2", snapshot=snapshot)

    @get("/overview/panel", opt={"exclude_from_auth": True})  # see routes.NOT_RATE_LIMITED
    async def overview_panel(
        self, request: Request[Any, Any, Any], dashboard: DashboardDep
    ) -> Response[Any]:
        """The overview's figures alone, for the auto-refresh."""
        snapshot = await dashboard.overview.get()
        return render(request, "overview_panel.html.j2", snapshot=snapshot)

    @get("/failures")
    async def failures(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[Any]:
        """The latest failed, timed-out and abandoned runs of every owner, grouped."""
        now = datetime.now(UTC)
        groups = await failure_groups(services.db, now)
        latest = await latest_failures(services.db, now)
        return render(
            request,
            "failures.html.j2",
            groups=groups,
            latest=latest,
            scanned=FAILURES_SCANNED,
            window_days=FAILURES_WINDOW.days,
        )

    @get("/workers")
    async def workers(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> Response[Any]:
        """Every worker process heard from in the last 7 days."""
        now = datetime.now(UTC)
        stale_after = timedelta(seconds=services.settings.worker_stale_seconds)
        rows = await list_workers(services.db, now, stale_after)
        return render(
            request,
            "workers.html.j2",
            workers=rows,
            stale_seconds=int(services.settings.worker_stale_seconds),
        )
